// Which layers share one build session, and the joined Dockerfile's step numbering: the
// rules that keep a chain's images identical to layer-by-layer builds.

import type { JobLayer } from "@kiln-build/protocol";
import { describe, expect, it } from "vitest";
import { joinChain, planChains } from "../src/chain-plan.ts";
import { layer } from "./helpers/jobs.ts";

const HOST = "registry.test:5000";
const at = (i: number, commands: string[], extra: Partial<JobLayer> = {}) => layer(i, `l${i}`, commands, HOST, extra);
const context = { digest: `sha256:${"a".repeat(64)}`, sizeBytes: 10, url: "https://kiln.test/ctx" };
const plan = (layers: JobLayer[], enabled = true) => planChains(layers, { enabled });

describe("planChains", () => {
  it("joins layers that continue their parent with at least one step", () => {
    const layers = [at(0, ["FROM python:3.12", "RUN pip install x"]), at(1, ["FROM base", "ENV A=1"]), at(2, ["FROM base", "RUN make"])];
    expect(plan(layers)).toEqual([[0, 1, 2]]);
    expect(plan(layers, false)).toEqual([[0], [1], [2]]);
  });

  it("builds a root layer without steps alone, and multi-stage layers alone", () => {
    expect(plan([at(0, ["FROM python:3.12"]), at(1, ["FROM base", "RUN a"]), at(2, ["FROM base", "RUN b"])])).toEqual([[0], [1, 2]]);
    const multiStage = at(1, ["FROM base", "RUN a", "FROM alpine AS other", "RUN b"]);
    expect(plan([at(0, ["FROM x", "RUN a"]), multiStage, at(2, ["FROM base", "RUN c"])])).toEqual([[0], [1], [2]]);
  });

  it("ends a chain after ARG, SHELL or ONBUILD, which would reach the next layer's steps", () => {
    for (const leak of ["ARG VERSION=1", 'SHELL ["/bin/bash", "-c"]', "ONBUILD RUN echo later"]) {
      expect(plan([at(0, ["FROM x", leak]), at(1, ["FROM base", "RUN a"]), at(2, ["FROM base", "RUN b"])])).toEqual([[0], [1, 2]]);
    }
    // An ARG in the last layer of a chain reaches nothing.
    expect(plan([at(0, ["FROM x", "RUN a"]), at(1, ["FROM base", "ARG V", "RUN echo $V"])])).toEqual([[0, 1]]);
  });

  it("gives a chain at most one layer that reads a build context", () => {
    const layers = [
      at(0, ["FROM x", "RUN a"]),
      at(1, ["FROM base", "COPY . /app"], { context }),
      at(2, ["FROM base", "RUN b"]),
      at(3, ["FROM base", "COPY . /more"], { context }),
      at(4, ["FROM base", "COPY --from=alpine /etc/os-release /os"]),
    ];
    expect(plan(layers)).toEqual([
      [0, 1, 2],
      [3, 4],
    ]);
    // A COPY from an empty context reads the context too.
    expect(plan([at(0, ["FROM x", "COPY a /a"]), at(1, ["FROM base", "COPY . /b"], { context })])).toEqual([[0], [1]]);
  });

  it("keeps GPU layers and layers with other build arguments apart", () => {
    const gpu = { count: 1, type: "A100-80GB" } as JobLayer["gpu"];
    expect(plan([at(0, ["FROM x", "RUN a"]), at(1, ["FROM base", "RUN nvidia-smi"], { gpu }), at(2, ["FROM base", "RUN b"])])).toEqual([
      [0],
      [1],
      [2],
    ]);
    const args = (buildArgs: Record<string, string>) => ({ buildArgs });
    expect(
      plan([
        at(0, ["FROM x", "RUN a"], args({ A: "1", B: "2" })),
        at(1, ["FROM base", "RUN b"], args({ B: "2", A: "1" })),
        at(2, ["FROM base", "RUN c"], args({ A: "2" })),
      ]),
    ).toEqual([[0, 1], [2]]);
  });

  it("leaves lines that do not parse to the layer's own build", () => {
    expect(plan([at(0, ["FROM x", "RUN a"]), at(1, ["FROM base", "RUN <<EOF", "never ends"])])).toEqual([[0], [1]]);
  });
});

describe("joinChain", () => {
  it("drops the later layers' FROM lines and counts steps as buildah does", () => {
    const chain = joinChain([
      "ARG BASE=x\nFROM ${BASE}\nRUN a\n",
      "FROM parent:1\nENV A=1\nRUN <<EOF\necho b\necho c\nEOF\n",
      "FROM parent:2\nWORKDIR /w\n",
    ]);
    expect(chain.text).toBe("ARG BASE=x\nFROM ${BASE}\nRUN a\nENV A=1\nRUN <<EOF\necho b\necho c\nEOF\nWORKDIR /w\n");
    // The global ARG is not a step; FROM is step 1.
    expect(chain.lastSteps).toEqual([2, 4, 5]);
    expect(chain.totalSteps).toBe(5);
  });
});
