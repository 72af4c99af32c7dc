/**
 * A fake AWS ECR API for tests: checks that `GetAuthorizationToken` arrives SigV4-signed
 * (service `ecr`, the expected region and key) by re-signing the request with aws4fetch's
 * signer at the same timestamp, then answers with an authorization token for `password`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AwsV4Signer } from "aws4fetch";

/** A running fake ECR endpoint. */
export type FakeEcr = { endpoint: string; calls: number; problems: string[]; close(): Promise<void> };

/** Starts a fake ECR that accepts only requests signed with `accessKeyId`/`secretAccessKey`. */
export async function startFakeEcr(options: {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  password: string;
}): Promise<FakeEcr> {
  const state = { calls: 0, problems: [] as string[] };
  const server: Server = createServer(async (req, res) => {
    state.calls++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    const url = `http://${req.headers.host}${req.url}`;
    const headers: Record<string, string> = {};
    for (const name of ["content-type", "x-amz-target", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const expected = await new AwsV4Signer({
      method: req.method ?? "POST",
      url,
      headers,
      body,
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      service: "ecr",
      region: options.region,
      datetime: headers["x-amz-date"],
    }).sign();
    const authorization = req.headers.authorization ?? "";
    if (headers["x-amz-target"] !== "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
      state.problems.push(`target ${headers["x-amz-target"]}`);
    if (!authorization.includes(`/${options.region}/ecr/aws4_request`)) state.problems.push(`scope ${authorization}`);
    if (authorization !== expected.headers.get("authorization")) {
      res.writeHead(403, { "content-type": "application/x-amz-json-1.1" });
      return void res.end(
        JSON.stringify({ __type: "UnrecognizedClientException", message: "The security token included in the request is invalid." }),
      );
    }
    res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
    res.end(
      JSON.stringify({
        authorizationData: [
          {
            authorizationToken: Buffer.from(`AWS:${options.password}`).toString("base64"),
            expiresAt: Date.now() / 1000 + 43200,
            proxyEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
          },
        ],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    get calls() {
      return state.calls;
    },
    problems: state.problems,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
