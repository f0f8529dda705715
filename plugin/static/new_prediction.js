// The creation form: a live data check as the marketer types (debounced), then the create call.
// Warnings are shown as warnings; a refusal names its fields. Plain JavaScript, no dependencies.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat("en-US");
  const check = $("check"), formError = $("form-error");
  let timer = null, sequence = 0;

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
      const failure = new Error(error.message || `the request failed (${response.status})`);
      failure.details = error.details || {};
      throw failure;
    }
    return data;
  }

  function definition() {
    const body = {
      name: $("name").value.trim() || "draft", goal_event: $("goal_event").value,
      window_days: Number($("window_days").value), status: $("status").value, schedule: $("schedule").value,
    };
    if ($("audience-kind").value === "custom") body.audience = JSON.parse($("audience-json").value || "null");
    return body;
  }

  function showError(error) {
    const fields = Object.entries(error.details || {}).filter(([, v]) => Array.isArray(v))
      .map(([k, v]) => `${k}: ${v.join(" ")}`);
    formError.textContent = [error.message, ...fields].join(" — ");
    formError.hidden = false;
  }

  function showCheck(data) {
    $("check-eligible").textContent = numbers.format(data.eligible_users);
    $("check-converters").textContent = numbers.format(data.past_converters);
    $("check-non-converters").textContent = numbers.format(data.non_converters);
    $("check-window").textContent = `In the last ${data.window_days} days; training needs at least ` +
      `${numbers.format(data.min_positives)} converters and ${numbers.format(data.min_negatives)} non-converters.`;
    const warnings = $("check-warnings");
    warnings.replaceChildren(...data.warnings.map((w) => {
      const p = document.createElement("p");
      p.className = "warning"; p.dataset.code = w.code; p.textContent = w.message;
      return p;
    }));
    check.dataset.state = data.enough ? "enough" : "thin";
  }

  async function runCheck() {
    const mine = ++sequence;
    formError.hidden = true;
    check.dataset.state = "loading";
    try {
      const data = await post(config.urls.check, definition());
      if (mine === sequence) showCheck(data);
    } catch (error) {
      if (mine === sequence) { check.dataset.state = "error"; showError(error); }
    }
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(runCheck, 250); }

  ["goal_event", "window_days", "audience-kind", "audience-json", "status"].forEach((id) =>
    $(id).addEventListener("input", schedule));
  $("audience-kind").addEventListener("change", () => {
    $("audience-json-label").hidden = $("audience-kind").value !== "custom";
  });

  $("new-prediction").addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    if (!$("name").value.trim()) { showError({ message: "Give the prediction a name." }); return; }
    $("create").disabled = true;
    try {
      const created = await post(config.urls.create, definition());
      window.location.assign(config.urls.page.replace(/0$/, String(created.id)));
    } catch (error) {
      showError(error);
      $("create").disabled = false;
    }
  });

  if ($("goal_event").options.length) runCheck();
})();
