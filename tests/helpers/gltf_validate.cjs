// Validate a .glb/.gltf with the Khronos glTF validator; print its JSON report.
// Usage: NODE_PATH=<dir>/node_modules node gltf_validate.cjs FILE  (exit 1 when it has errors)
const fs = require("fs");
const path = require("path");
const validator = require("gltf-validator");

const file = process.argv[2];
const data = new Uint8Array(fs.readFileSync(file));
validator
  .validateBytes(data, {
    uri: path.basename(file),
    externalResourceFunction: (uri) =>
      new Promise((resolve, reject) => {
        fs.readFile(path.join(path.dirname(file), decodeURIComponent(uri)), (err, buf) =>
          err ? reject(err.toString()) : resolve(new Uint8Array(buf)));
      }),
  })
  .then((report) => {
    process.stdout.write(JSON.stringify(report));
    process.exit(report.issues.numErrors > 0 ? 1 : 0);
  })
  .catch((err) => {
    process.stderr.write(String(err));
    process.exit(2);
  });
