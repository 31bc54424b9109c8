// The CI starts `demo-app serve` itself; this config never starts a web server
// and never downloads a browser: it drives the system chromium.
import { defineConfig } from '@playwright/test';

const baseURL = process.env.DEMO_BASE_URL || 'http://127.0.0.1:8765';
const executablePath = process.env.WARMCI_CHROMIUM || '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  // Per-job output dir so concurrent jobs don't share test-results/.
  outputDir: process.env.PW_OUTPUT_DIR || 'test-results',
  workers: Number(process.env.PW_WORKERS || 1),
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 5_000 },
  reporter: 'list',
  use: {
    baseURL,
    browserName: 'chromium',
    headless: true,
    trace: 'off',
    screenshot: 'off',
    video: 'off',
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    },
  },
});
