"""The per-project edge: services, Kong, nginx, certificates, Supavisor and Realtime tenants.

Entry points for `nextmavens apply` (see each module's docstring):
- `settings.EdgeSettings`: platform settings (domains, addresses, budget, platform-only secrets);
- `inputs.EdgeProject(manifest, secrets)`: one project as the edge sees it;
- `apply.plan_edge(settings, projects, running)` (pure; raises `EdgeRefused`, nothing changed) and
  `apply.apply_edge(runtime, projects, running)` (converges containers -> Kong -> nginx + certs -> tenants);
- `endpoints.project_endpoints(settings, manifest, secrets)`: what `keys show` prints.
"""
