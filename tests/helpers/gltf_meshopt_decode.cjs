// Rewrite a meshopt-compressed .glb (gltfpack output) as a plain one that Blender's importer reads.
// Usage: NODE_PATH=<dir>/node_modules node gltf_meshopt_decode.cjs IN.glb OUT.glb
//
// Blender's glTF importer refuses EXT_meshopt_compression and KHR_texture_basisu. The buffer views
// are decoded with meshoptimizer's own decoder (npm meshoptimizer) into one plain binary chunk;
// the KTX2 textures are dropped (materials keep their factors), as the tests need only the
// geometry, the morph targets and the node tree. KHR_mesh_quantization stays: Blender reads it.
const fs = require("fs");
const MeshoptDecoder = require("meshoptimizer/decoder.cjs");

const MESHOPT = "EXT_meshopt_compression";
const DROPPED = [MESHOPT, "KHR_texture_basisu", "KHR_texture_transform"];

function readGlb(buf) {
  if (buf.readUInt32LE(0) !== 0x46546c67) throw new Error("not a binary glTF (.glb)");
  let off = 12, json = null, bin = Buffer.alloc(0);
  while (off < buf.length) {
    const len = buf.readUInt32LE(off), type = buf.readUInt32LE(off + 4);
    const chunk = buf.subarray(off + 8, off + 8 + len);
    if (type === 0x4e4f534a) json = JSON.parse(chunk.toString("utf8"));
    else if (type === 0x004e4942) bin = chunk;
    off += 8 + len;
  }
  return { json, bin };
}

function pad4(buf, fill) {
  const extra = (4 - (buf.length % 4)) % 4;
  return extra ? Buffer.concat([buf, Buffer.alloc(extra, fill)]) : buf;
}

function writeGlb(json, bin) {
  const j = pad4(Buffer.from(JSON.stringify(json), "utf8"), 0x20);
  const b = pad4(bin, 0);
  const head = Buffer.alloc(12);
  head.writeUInt32LE(0x46546c67, 0); head.writeUInt32LE(2, 4);
  head.writeUInt32LE(12 + 8 + j.length + 8 + b.length, 8);
  const jh = Buffer.alloc(8); jh.writeUInt32LE(j.length, 0); jh.writeUInt32LE(0x4e4f534a, 4);
  const bh = Buffer.alloc(8); bh.writeUInt32LE(b.length, 0); bh.writeUInt32LE(0x004e4942, 4);
  return Buffer.concat([head, jh, j, bh, b]);
}

function stripTextures(json) {
  const strip = (o) => {
    if (!o || typeof o !== "object") return;
    for (const k of Object.keys(o)) {
      if (/Texture$/.test(k) && o[k] && typeof o[k].index === "number") delete o[k];
      else strip(o[k]);
    }
  };
  (json.materials || []).forEach(strip);
  delete json.textures; delete json.images; delete json.samplers;
}

async function main() {
  const [src, dst] = process.argv.slice(2);
  if (!src || !dst) throw new Error("usage: gltf_meshopt_decode.cjs IN.glb OUT.glb");
  await MeshoptDecoder.ready;
  const { json, bin } = readGlb(fs.readFileSync(src));
  const parts = [];
  let size = 0;
  for (const view of json.bufferViews || []) {
    const ext = view.extensions && view.extensions[MESHOPT];
    let data;
    if (ext) {
      if (ext.buffer !== 0) throw new Error("compressed data outside the .glb binary chunk");
      const source = new Uint8Array(bin.buffer, bin.byteOffset + (ext.byteOffset || 0), ext.byteLength);
      const target = new Uint8Array(ext.count * ext.byteStride);
      MeshoptDecoder.decodeGltfBuffer(target, ext.count, ext.byteStride, source, ext.mode,
                                      ext.filter || "NONE");
      data = Buffer.from(target.buffer);
      delete view.extensions[MESHOPT];
      if (!Object.keys(view.extensions).length) delete view.extensions;
    } else if (view.buffer === 0) {
      data = Buffer.from(bin.subarray(view.byteOffset || 0, (view.byteOffset || 0) + view.byteLength));
    } else {
      throw new Error(`buffer view on buffer ${view.buffer} without ${MESHOPT}`);
    }
    view.buffer = 0; view.byteOffset = size; view.byteLength = data.length;
    data = pad4(data, 0);
    parts.push(data); size += data.length;
  }
  json.buffers = [{ byteLength: size }];
  stripTextures(json);
  for (const key of ["extensionsUsed", "extensionsRequired"]) {
    if (json[key]) json[key] = json[key].filter((e) => !DROPPED.includes(e));
    if (json[key] && !json[key].length) delete json[key];
  }
  fs.writeFileSync(dst, writeGlb(json, Buffer.concat(parts)));
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
