"""The per-project edge: services, Kong, nginx, certificates, Supavisor and Realtime tenants.

Entry points (see each module's docstring):
- `settings.EdgeSettings`: platform settings (domains, addresses, budget, platform-only secrets);
- `settingsfile.load_edge_host(path)`: the settings file `--edge-config` names; `hostruntime.edge_runtime`:
  the I/O built from it;
- `inputs.EdgeProject(manifest, secrets)`: one project as the edge sees it;
- `apply.check_edge(settings, manifests, running, certificates)` (pure; raises `EdgeRefused`, nothing
  changed) and `apply.apply_edge(runtime, projects, checked)` (converges containers -> Kong -> nginx + certs
  -> tenants);
- `step`: what `apply`, `keys rotate` and `destroy` run around their database change.
"""
