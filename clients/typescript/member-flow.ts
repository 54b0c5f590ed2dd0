/**
 * A member's flow through openapi-fetch, typed by the types generated from the OpenAPI schema
 * (README, "Clients"): log in, check the quota, upload a product photo, order `basic_clean`, wait
 * for it, print the result URLs.
 *
 *   npm ci && npm run generate && npm run build
 *   node dist/member-flow.js http://127.0.0.1:8000 <username> <password> photo.jpg
 *
 * `memberFlow` uses nothing of Node's: a web front end can copy it as it is (with the File of an
 * <input type="file"> as the photo). core/tests/test_generated_clients.py type-checks this file
 * against a freshly generated schema.d.ts and runs it against a live server on every `make test`.
 */
import { readFile } from "node:fs/promises";
import { basename, extname } from "node:path";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Task = components["schemas"]["TaskOut"];
type ErrorEnvelope = components["schemas"]["ErrorEnvelope"];

const POLL_MS = 1000;
const FINISHED: ReadonlyArray<Task["status"]> = ["success", "failed"];
const CONTENT_TYPES: Record<string, string> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".webp": "image/webp",
};

/** An error answer (`{success: false, error: {code, message}}`, SPEC §2). */
export class ApiError extends Error {}

/** The payload of a 2xx answer (`{success: true, data}`), or ApiError for an error answer. */
function unwrap<Payload>(
  answer: { data: { data: Payload }; error?: never } | { data?: never; error: ErrorEnvelope },
): Payload {
  if (answer.error !== undefined) {
    throw new ApiError(`${answer.error.error.code} ${answer.error.error.message}`);
  }
  return answer.data.data;
}

/** The result URLs of a `basic_clean` job on `photo`. */
export async function memberFlow(
  baseUrl: string,
  username: string,
  password: string,
  photo: Blob,
  fileName: string,
  timeoutMs = 120_000,
): Promise<string[]> {
  const anonymous = createClient<paths>({ baseUrl });
  const login = unwrap(await anonymous.POST("/api/auth/login", { body: { username, password } }));

  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${login.token}` } });
  const quota = unwrap(await api.GET("/api/quota"));
  if (quota.remaining < 1) {
    throw new ApiError("no quota left: renew the membership first");
  }
  const upload = unwrap(
    await api.POST("/api/media/upload", {
      body: { file: photo },
      bodySerializer(body) {
        const form = new FormData();
        form.append("file", body.file, fileName);
        return form;
      },
    }),
  );
  let task: Task = unwrap(
    await api.POST("/api/task/create", { body: { type: "basic_clean", inputImageUrl: upload.url } }),
  );
  const deadline = Date.now() + timeoutMs;
  while (!FINISHED.includes(task.status)) {
    if (Date.now() > deadline) {
      throw new ApiError(`task ${task.id} still ${task.status} after ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    task = unwrap(await api.GET("/api/task/{task_id}", { params: { path: { task_id: task.id } } }));
  }
  if (task.status !== "success") {
    throw new ApiError(`task ${task.id} failed: ${task.errorMessage}`);
  }
  return task.resultUrls;
}

async function main(argv: string[]): Promise<number> {
  const [baseUrl, username, password, photoPath] = argv;
  if (argv.length !== 4 || !baseUrl || !username || !password || !photoPath) {
    console.error("usage: node dist/member-flow.js <base URL> <username> <password> <photo>");
    return 2;
  }
  const type = CONTENT_TYPES[extname(photoPath).toLowerCase()] ?? "application/octet-stream";
  const photo = new Blob([await readFile(photoPath)], { type });
  for (const url of await memberFlow(baseUrl, username, password, photo, basename(photoPath))) {
    console.log(url);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
