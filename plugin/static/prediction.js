// The prediction page: a two-handle score slider that previews its audience (debounced), and
// Create Segment / Create Campaign for the selected range. Plain JavaScript, no dependencies.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const low = $("range-low"), high = $("range-high"), figures = $("figures");
  const result = $("result"), nameInput = $("target-name");
  const numbers = new Intl.NumberFormat("en-US");
  const DEBOUNCE_MS = 200;
  let timer = null, sequence = 0, nameEdited = false;

  // The same formats the tests expect: 12,345 users; 12.3 or 1,234 conversions; 41.2 %.
  const count = (n) => numbers.format(Math.round(n));
  const expected = (x) => (x < 100 ? x.toFixed(1) : numbers.format(Math.round(x)));
  const percent = (r) => (r === null || r === undefined ? "—" : (r * 100).toFixed(1) + " %");

  function range() { return { min: Number(low.value), max: Number(high.value) }; }

  function defaultName(r) { return `${config.name} · score ${r.min}–${r.max}`; }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { /* not JSON: reported below */ }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new Error(error.message || `the request failed (${response.status})`);
    }
    return data;
  }

  function paint() {
    const r = range();
    $("range-label").textContent = `${r.min}–${r.max}`;
    const fill = $("range-fill");
    fill.style.left = r.min + "%";
    fill.style.width = (r.max - r.min) + "%";
    document.querySelectorAll("#histogram .bar").forEach((bar) => {
      const from = Number(bar.dataset.from), to = Number(bar.dataset.to);
      bar.classList.toggle("in-range", from < r.max && to > r.min);
    });
    if (!nameEdited && nameInput) nameInput.value = defaultName(r);
  }

  function show(r, data) {
    const ownFigures = (data.predictions || []).find((p) => p.prediction_id === config.predictionId);
    const targeting = data.targeting || {};
    $("fig-size").textContent = count(data.size);
    $("fig-size").dataset.value = data.size;
    $("fig-expected").textContent = ownFigures ? expected(ownFigures.expected_conversions) : "—";
    $("fig-expected").dataset.value = ownFigures ? ownFigures.expected_conversions : "";
    $("fig-share").textContent = ownFigures ? percent(ownFigures.expected_share) : "—";
    $("fig-share").dataset.value = ownFigures ? ownFigures.expected_share ?? "" : "";
    $("fig-recall").textContent = percent(targeting.recall);
    $("fig-recall").dataset.value = targeting.recall ?? "";
    // The count behind the ratio: a small test set makes recall noisy, and the reader should see it.
    $("fig-recall-basis").textContent = targeting.test_positives
      ? `${count(targeting.positives)} of ${count(targeting.test_positives)} test converters` : "";
    $("fig-precision").textContent = percent(targeting.precision);
    $("fig-precision").dataset.value = targeting.precision ?? "";
    $("fig-summary").textContent = data.summary;
    figures.dataset.range = `${r.min}-${r.max}`;
    figures.dataset.state = "ready";
  }

  async function refresh() {
    const r = range(), mine = ++sequence;
    figures.dataset.state = "loading";
    try {
      const data = await post(config.urls.preview, r);
      if (mine === sequence) show(r, data);  // a slower, older answer never overwrites a newer one
    } catch (error) {
      if (mine === sequence) {
        figures.dataset.state = "error";
        $("fig-summary").textContent = "Could not preview this range: " + error.message;
      }
    }
  }

  function moved(event) {
    // Keep the handles apart: the one being moved pushes the other.
    if (Number(low.value) >= Number(high.value)) {
      if (event.target === low) {
        if (Number(low.value) >= 100) low.value = 99;
        high.value = Number(low.value) + 1;
      } else {
        if (Number(high.value) <= 0) high.value = 1;
        low.value = Number(high.value) - 1;
      }
    }
    // The handle last touched stays on top, so two handles at one spot can still be separated.
    low.style.zIndex = event.target === low ? 2 : 1;
    high.style.zIndex = event.target === high ? 2 : 1;
    paint();
    clearTimeout(timer);
    timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  function report(html, isError) {
    result.hidden = false;
    result.className = "result" + (isError ? " error" : "");
    result.innerHTML = html;
  }

  const escape = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  async function create(kind, button) {
    const r = range();
    const body = { min: r.min, max: r.max, name: (nameInput.value || "").trim() || defaultName(r) };
    button.disabled = true;
    try {
      const made = await post(config.urls[kind], body);
      if (kind === "segments") {
        report(`Segment <strong>${escape(made.name)}</strong> created (id ${made.id}) with ` +
               `<span id="segment-size">${count(made.size)}</span> members. ` +
               `Its members: <code>GET /v1/segments/${made.id}/members</code>.`, false);
      } else {
        const tiers = made.tiers.map((t) => escape(t.name)).join(", ");
        const warnings = (made.warnings || []).map((w) => `<li>${escape(w)}</li>`).join("");
        report(`Campaign <strong>${escape(made.name)}</strong> created (id ${made.id}), ` +
               `<strong>${escape(made.status)}</strong>, tiers: ${tiers}. Review it and activate it ` +
               `(<code>PATCH /v1/campaigns/${made.id}</code>) to send.` +
               (warnings ? `<ul>${warnings}</ul>` : ""), false);
      }
      result.dataset.kind = kind;
      result.dataset.id = made.id;
    } catch (error) {
      report(escape(error.message), true);
    } finally {
      button.disabled = false;
    }
  }

  low.addEventListener("input", moved);
  high.addEventListener("input", moved);
  if (nameInput) nameInput.addEventListener("input", () => { nameEdited = true; });
  if (config.targetable) {
    $("create-segment").addEventListener("click", (e) => create("segments", e.currentTarget));
    $("create-campaign").addEventListener("click", (e) => create("campaigns", e.currentTarget));
  }
  paint();
  refresh();
})();
