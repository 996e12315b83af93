// Bundled by bench/p8.mjs with esbuild (into a temp dir, at the benchmark's start) into
// uppy-bundle.js and uppy-bundle.css, which P8's Uppy page (uppy.html) loads: Uppy's core,
// its Dashboard and its S3 uploader, with their styles, as an app would ship them.
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";

export { default as Uppy } from "@uppy/core";
export { default as Dashboard } from "@uppy/dashboard";
export { default as AwsS3 } from "@uppy/aws-s3";
