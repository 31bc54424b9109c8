import { expect, test } from '@playwright/test';

const columnTexts = (page, index) =>
  page.locator(`#data-table tbody tr td:nth-child(${index})`).allTextContents();

test('page loads the bundle', async ({ page }) => {
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const resp = await page.goto('/');
  expect(resp.status()).toBe(200);
  await expect(page).toHaveTitle('warmci demo table');
  await expect(page.locator('#status')).toHaveText(/\d+ rows/);
  expect(errors).toEqual([]);
});

test('table renders the rows from /api/rows', async ({ page, request }) => {
  const api = await (await request.get('/api/rows')).json();
  await page.goto('/');
  const table = page.locator('#data-table');
  await expect(table.locator('thead th')).toHaveText(api.columns);
  await expect(table.locator('tbody tr')).toHaveCount(api.rows.length);
  await expect(page.locator('#status')).toHaveText(`${api.rows.length} rows`);
  expect(await columnTexts(page, 1)).toEqual(api.rows.map((r) => r.name));
});

test('clicking a header sorts, clicking again reverses', async ({ page, request }) => {
  const api = await (await request.get('/api/rows')).json();
  const starsIdx = api.columns.indexOf('stars') + 1;
  const byStars = [...api.rows].sort((a, b) => a.stars - b.stars).map((r) => r.name);
  await page.goto('/');
  const header = page.locator('#data-table th[data-column="stars"]');

  await header.click();
  await expect(header).toHaveText('stars ▲');
  expect(await columnTexts(page, 1)).toEqual(byStars);

  await header.click();
  await expect(header).toHaveText('stars ▼');
  expect(await columnTexts(page, 1)).toEqual([...byStars].reverse());
  // numbers are formatted with thousands separators and right-aligned
  await expect(page.locator(`#data-table tbody tr:first-child td:nth-child(${starsIdx})`)).toHaveClass('num');
});
