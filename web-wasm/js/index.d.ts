/** Where an upload stands. */
export type UploadState =
  | "queued"
  | "hashing"
  | "uploading"
  | "paused"
  | "completing"
  | "complete"
  | "instant"
  | "failed"
  | "cancelled";

export interface Progress {
  /** The file's size in bytes. */
  total: number;
  /** Bytes hashed so far (the whole-file SHA-1 runs ahead of sending). */
  hashed: number;
  /** Bytes stored so far; never goes backwards. */
  sent: number;
  /** Smoothed upload speed in bytes per second; 0 until measured. */
  bytes_per_sec: number;
  /** Seconds left at that speed; null until known. */
  eta_secs: number | null;
}

/** What `task.done` resolves to. */
export interface StoredFile {
  file_id: string;
  /** Hex SHA-1 of the content (the client's until the server has verified it). */
  sha1: string | null;
  size: number;
  /** True when the content was already stored and no part was sent. */
  instant: boolean;
}

/** What `task.done` rejects with: the backend's `{code, message}`, or a network, storage or file code. */
export class UploadError extends Error {
  code: string;
  status?: number;
}

export interface UploaderOptions {
  /** The Shardrop API, absolute or relative to the page. Default "/api/v1". */
  endpoint?: string;
  /** Part PUTs in flight across all of this Uploader's files, 1 to 6. Default 4. */
  concurrency?: number;
  /** Bearer token for the API, when it requires one. */
  token?: string;
  /** A worker you started yourself from `shardrop/worker.js` (bundlers that cannot resolve it). */
  worker?: Worker;
}

export interface UploadHooks {
  /** The name to store the file under (default: `file.name`), e.g. its path in a dropped folder. */
  name?: string;
  onProgress?: (progress: Progress, task: UploadTask) => void;
  onStateChange?: (state: UploadState, task: UploadTask) => void;
}

export class UploadTask {
  readonly id: number;
  readonly file: File;
  readonly state: UploadState;
  readonly progress: Progress;
  /** The backend's upload id, once the upload has started (null before). */
  readonly upload_id: string | null;
  /** `first_put_ms`: time from `upload()` to the first part PUT. */
  readonly timings: Record<string, number>;
  readonly done: Promise<StoredFile>;
  pause(): void;
  resume(): void;
  cancel(): void;
}

export class Uploader {
  constructor(options?: UploaderOptions);
  upload(file: File, hooks?: UploadHooks): UploadTask;
  terminate(): void;
}
