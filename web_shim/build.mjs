// Bundle src/shim.js and the modules it imports into one minified script, service/static/shim.js (or the file
// named on the command line), with the esbuild pinned in package-lock.json. The output is committed;
// tests/shim/test_shim_build.py rebuilds and compares.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

await build({
  entryPoints: [here("src/shim.js")],
  outfile: process.argv[2] ?? here("../service/static/shim.js"),
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
