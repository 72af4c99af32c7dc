// `kiln open`'s choice of browser opener (sdk/src/cli/commands/open.ts), pure: $BROWSER first,
// then the platform's opener, and none when the program is not installed.
import { describe, expect, it } from "vitest";
import { browserOpener } from "../src/cli/commands/open.ts";

const installed =
  (...programs: string[]) =>
  (program: string) =>
    programs.includes(program);

describe("browserOpener", () => {
  it("uses $BROWSER when it is installed, else nothing", () => {
    expect(browserOpener("linux", { BROWSER: "firefox" }, installed("firefox", "xdg-open"))).toEqual({ command: "firefox", args: [] });
    expect(browserOpener("linux", { BROWSER: "w3m:lynx" }, installed("w3m"))).toEqual({ command: "w3m", args: [] });
    expect(browserOpener("linux", { BROWSER: "nothere" }, installed("xdg-open"))).toBeNull();
  });

  it("falls back to the platform's opener when it exists", () => {
    expect(browserOpener("linux", {}, installed("xdg-open"))).toEqual({ command: "xdg-open", args: [] });
    expect(browserOpener("darwin", {}, installed("open"))).toEqual({ command: "open", args: [] });
    expect(browserOpener("win32", {}, installed("explorer.exe"))).toEqual({ command: "explorer.exe", args: [] });
    expect(browserOpener("linux", {}, installed())).toBeNull();
  });
});
