/**
 * Base images from private registries. Create the secrets first:
 *   kiln secret create registry REGISTRY_USERNAME=me REGISTRY_PASSWORD=...
 *   kiln secret create aws AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=us-east-1
 * Runners fetch registry credentials for the pull only; they never enter the image.
 */
import { Image, Secret } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

export const fromDockerHub = Image.fromRegistry("myorg/private-base:1.4", {
  secret: Secret.fromName("registry", { requiredKeys: ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"] }),
  addPython: "3.11",
}).pipInstall("fastapi");

export const fromEcr = Image.fromAwsEcr(
  "000000000000.dkr.ecr.us-east-1.amazonaws.com/team/base:2025",
  Secret.fromName("aws", { requiredKeys: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] }),
).aptInstall("jq");

export default fromDockerHub;

await runExample(fromDockerHub, import.meta.url);
