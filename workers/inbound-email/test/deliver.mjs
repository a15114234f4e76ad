// Delivers one raw message to the worker running in miniflare (workerd, locally, offline), as Cloudflare's Email
// Routing would: `node test/deliver.mjs FROM TO RAWFILE`, with PLATFORM_URL and INBOUND_SECRET in the environment.
// Prints one JSON line: {"status", "rejected"}. The tests (tests/integration/email/test_inbound_worker.py) run it
// against the real platform service on loopback.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const [from, to, rawFile] = process.argv.slice(2);
const postal = join(root, "node_modules", "postal-mime", "dist", "esm");

// workerd resolves a bare import by module name: postal-mime's own files are given under their names (wrangler's
// bundler does this on deploy).
const entry = join(root, "src", "index.js");
const modules = [{ type: "ESModule", path: entry, contents: await readFile(entry, "utf8") }];
for (const name of await readdir(postal)) {
  if (name.endsWith(".js")) {
    const contents = await readFile(join(postal, name), "utf8");
    const path = name === "postal-mime.js" ? join(root, "src", "postal-mime") : join(root, "src", name);
    modules.push({ type: "ESModule", path, contents });
  }
}

const mf = new Miniflare({
  modules,
  modulesRoot: join(root, "src"),
  compatibilityDate: "2025-01-01",
  cf: false,
  unsafeTriggerHandlers: true,
  bindings: { PLATFORM_URL: process.env.PLATFORM_URL, INBOUND_SECRET: process.env.INBOUND_SECRET },
});
try {
  const raw = await readFile(rawFile);
  const url = `http://localhost/cdn-cgi/handler/email?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  const response = await mf.dispatchFetch(url, { method: "POST", body: raw });
  const text = await response.text();
  console.log(JSON.stringify({ status: response.status, body: text.slice(0, 500) }));
} finally {
  await mf.dispose();
}
