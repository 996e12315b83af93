// Bundled by bench/p2.mjs with esbuild (into a temp dir, at the benchmark's start) into
// uppy-bundle.js, which P2's page imports: Uppy's core and its S3 multipart uploader, as
// an app would ship them.
export { default as Uppy } from "@uppy/core";
export { default as AwsS3 } from "@uppy/aws-s3";
