/**
 * A CUDA image for GPU work: the NVIDIA base with Python added from python-build-standalone,
 * and a layer whose build step runs with a GPU visible (it lands on a fleet that has one).
 */
import { Image } from "@kiln-build/sdk";
import { runExample } from "./run-example.ts";

export const image = Image.fromRegistry("nvidia/cuda:12.4.1-devel-ubuntu22.04", { addPython: "3.12" })
  .pipInstall(["torch", "ninja", "packaging", "wheel"], { indexUrl: "https://download.pytorch.org/whl/cu124" })
  // flash-attn compiles against the GPU at build time, hence the GPU and no build isolation.
  .pipInstall(["flash-attn==2.7.4.post1"], { extraOptions: "--no-build-isolation", gpu: "A100-80GB" })
  .runCommands("python -c 'import torch; assert torch.cuda.is_available()'", { gpu: "A100-80GB" });

await runExample(image, import.meta.url);
