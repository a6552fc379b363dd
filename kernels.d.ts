// build.mjs loads kernels/*.wgsl as text (esbuild `text` loader), so Node and the browser
// ship the same kernel strings.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
