// End-to-end check of STAC Browser on `stacmask serve`, in Debian's headless Chromium.
//
// Usage: node stac_browser.mjs CONFIG_JSON
// CONFIG_JSON: {"url", "out", "chromium", "collection", "item", "cloud", "maxCloud",
//               "searchIds", "excludedIds", "byCloudIds"}
// Opens the catalog, an item (cloud cover and classification classes must show), shows the
// item's mask COG on the map (class-coloured tiles from /tiles/), a search with a cloud-cover
// filter sorted newest first, the items sorted by cloud cover and by STAC Browser's built-in
// "Title" sort; saves a screenshot of each step in `out` (the map alone in 02b-map.png).
// Every request to a host other than 127.0.0.1 is blocked and counted (the test machine has
// no outside network; base-map tiles are expected to be the only ones). Prints one JSON
// summary line and exits non-zero with a message when a check fails.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const summary = {
  screenshots: [], external: [], searchRequests: [], tileRequests: [], searchStatus: [], checks: [],
};

function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
  summary.checks.push(message);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'stacmask-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: config.chromium,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 900 },
});
let failure = null;
try {
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== '127.0.0.1') {
      summary.external.push(url.origin);
      return route.abort();
    }
    return route.continue();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/search') {
      summary.searchRequests.push(`${request.method()} ${url.search}${request.postData() ?? ''}`);
    }
  });
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (url.pathname.startsWith('/tiles/')) {
      summary.tileRequests.push(response.status());
    }
    if (url.pathname === '/search' || url.pathname.endsWith('/items')) {
      summary.searchStatus.push(response.status());
    }
  });
  const shot = async (name) => {
    const file = path.join(config.out, name);
    await page.screenshot({ path: file, fullPage: true });
    summary.screenshots.push(file);
  };

  // 1. The landing page: STAC Browser opens on the served API by itself.
  await page.goto(`${config.url}/browser/`);
  await page.getByRole('heading', { name: config.catalogTitle, exact: true }).waitFor();
  await page.getByText(config.collectionTitle, { exact: true }).first().waitFor();
  check(true, 'catalog page shows the catalog and its collection');
  await shot('01-catalog.png');

  // 2. An item: cloud cover, classification classes, footprint map.
  await page.goto(`${config.url}/browser/#/collections/${config.collection}/items/${config.item}`);
  await page.getByRole('heading', { name: config.item, exact: true }).waitFor();
  await page.getByText('Cloud Cover', { exact: true }).first().waitFor();
  await page.getByText('cloud_shadow', { exact: true }).first().waitFor();
  const itemText = await page.innerText('body');
  // STAC Browser rounds the value; value and unit are separated by a no-break space.
  const shown = itemText.match(/Cloud Cover\s+([0-9.]+)\s*%/);
  check(shown !== null && Math.abs(Number(shown[1]) - config.cloud) < 0.01,
    `item shows "Cloud Cover ${shown?.[1]} %" for eo:cloud_cover ${config.cloud}`);
  const classes = itemText.slice(itemText.indexOf('Classes'));
  for (const [code, name] of [[0, 'clear'], [1, 'water'], [2, 'cloud_shadow'], [4, 'cloud']]) {
    check(new RegExp(`\\b${code}\\s+${name}\\b`).test(classes), `classification table lists ${code} ${name}`);
  }
  check(await page.locator('.ol-viewport canvas').count() > 0, 'item page draws its map');
  await shot('02-item.png');

  // 2b. The mask COG on the map, in its class colours.
  // STAC Browser shows an item's only data asset by itself; otherwise its button does.
  const showButton = page.getByRole('button', { name: /show on map/i });
  if (await showButton.count() > 0) {
    await showButton.first().click();
  }
  await page.getByText('Shown', { exact: false }).first().waitFor();
  await page.waitForTimeout(3000); // the tiles, and the map's fade-in
  check(summary.tileRequests.filter((s) => s === 200).length > 0, 'the map asked for class-coloured tiles');
  const mapFile = path.join(config.out, '02b-map.png');
  await page.locator('.ol-viewport').first().screenshot({ path: mapFile });
  summary.screenshots.push(mapFile);
  await shot('02c-item-with-mask.png');

  // 3. A search: cloud cover < maxCloud, newest first.
  await page.goto(`${config.url}/browser/#/search`);
  await page.getByRole('button', { name: 'Add filter' }).click();
  await page.locator('.dropdown-menu.show').getByText('Cloud cover (%)', { exact: true }).click();
  const filter = page.locator('.queryable-group', { hasText: 'Cloud cover (%)' });
  await filter.locator('.dropdown-toggle-split').click();
  await filter.locator('.dropdown-menu.show button', { has: page.locator('.badge', { hasText: /^<$/ }) }).click();
  await filter.locator('input.value').fill(String(config.maxCloud));
  await page.locator('.sort .multiselect').click();
  await page.locator('.sort .multiselect__option', { hasText: 'Time of Data' }).click();
  await page.locator('.sort').getByRole('button', { name: /descending/i }).click();
  await page.getByRole('button', { name: 'Submit' }).click();
  const firstCard = page.getByText(config.searchIds[0], { exact: true }).first();
  await firstCard.waitFor();
  const body = await page.innerText('body');
  const positions = config.searchIds.map((id) => body.indexOf(id));
  check(positions.every((p) => p >= 0), `search shows all ${config.searchIds.length} matching items`);
  check(positions.every((p, i) => i === 0 || p > positions[i - 1]), 'search results are newest first');
  for (const id of config.excludedIds) {
    check(!body.includes(id), `search leaves out ${id} (cloud cover over ${config.maxCloud} %)`);
  }
  const filtered = summary.searchRequests.some((r) => r.includes('cloud_cover'));
  check(filtered, 'the browser sent the CQL2 filter to /search');
  await shot('03-search.png');

  // 4. Sort by cloud cover (offered from /sortables), least cloudy first.
  await page.getByRole('button', { name: 'Reset' }).click();
  await page.locator('.sort .multiselect').click();
  await page.locator('.sort .multiselect__option', { hasText: 'Cloud cover (%)' }).click();
  await page.locator('.sort').getByRole('button', { name: /ascending/i }).click();
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.getByText(config.byCloudIds[0], { exact: true }).first().waitFor();
  const sortedBody = await page.innerText('body');
  const order = config.byCloudIds.map((id) => sortedBody.indexOf(id));
  check(order.every((p) => p >= 0), 'sorting by cloud cover shows every item');
  check(order.every((p, i) => i === 0 || p > order[i - 1]), 'items are least cloudy first');
  check(summary.searchRequests.some((r) => r.includes('cloud_cover') && /sortby/.test(r)),
    'the browser sent sortby on eo:cloud_cover');
  await shot('04-sorted-by-cloud.png');

  // 5. STAC Browser's built-in "Title" sort answers (items have no title: it sorts nothing).
  await page.locator('.sort .multiselect').click();
  await page.locator('.sort .multiselect__option', { hasText: 'Title' }).first().click();
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.getByText(config.byCloudIds[0], { exact: true }).first().waitFor();
  await page.waitForTimeout(1000);
  check(summary.searchStatus.every((s) => s === 200), `every search answered 200 (${summary.searchStatus})`);
  await shot('05-sorted-by-title.png');
  check(pageErrors.length === 0, `no page errors (${pageErrors.join('; ')})`);
} catch (error) {
  failure = error;
  try {
    const page = context.pages()[0];
    const file = path.join(config.out, 'failure.png');
    await page.screenshot({ path: file, fullPage: true });
    summary.screenshots.push(file);
  } catch {
    // the screenshot of a failure is a bonus
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
summary.external = [...new Set(summary.external)];
console.log(JSON.stringify(summary));
if (failure) {
  console.error(String(failure.stack ?? failure));
  process.exit(1);
}
