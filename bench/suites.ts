/** The benchmark suites, in RESULTS.md order. Each module: `export const suite: BenchSuite`. */
export interface BenchSuite {
  name: string;
  title: string;
  run(): Promise<string>;
}

export const suites: BenchSuite[] = [];
