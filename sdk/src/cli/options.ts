/** Argument parsers for commander options: bad values stop the command before any request. */
import { InvalidArgumentError } from "commander";

/** Parses a whole number from `min` up; commander prints the message and exits with the usage code. */
export function integerAtLeast(min: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
      throw new InvalidArgumentError(`expected a whole number of at least ${min}, got '${value}'.`);
    }
    return Number(value);
  };
}
