// The campaigns page: Activate / Pause / Archive / Unarchive, each one explicit call; warnings are
// shown as warnings and failures as errors, never inside a success message.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const message = document.getElementById("campaign-message");
  const VISIBLE = { activate: ["paused"], pause: ["active"], archive: ["active", "paused", "completed"],
                    unarchive: ["archived"] };

  function say(kind, text) {
    const p = document.createElement("p");
    p.className = kind; p.textContent = text;
    message.append(p);
  }

  function paint(row, campaign) {
    row.dataset.status = campaign.status;
    const badge = row.querySelector(".status");
    badge.textContent = campaign.status;
    badge.className = "status status-" + campaign.status;
    row.querySelectorAll("button[data-action]").forEach((button) => {
      button.hidden = !VISIBLE[button.dataset.action].includes(campaign.status);
    });
  }

  document.querySelectorAll("#campaigns button[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const row = button.closest("tr"), action = button.dataset.action;
      const url = config.url.replace(/\/0\/activate$/, `/${row.dataset.campaign}/${action}`);
      message.replaceChildren();
      button.disabled = true;
      try {
        const response = await fetch(url, {
          method: "POST", credentials: "same-origin", body: "{}",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
        });
        const data = await response.json();
        if (!response.ok) throw new Error((data.error && data.error.message) || `failed (${response.status})`);
        paint(row, data);
        say("success", `Campaign ${data.name} is ${data.status}.`);
        (data.warnings || []).forEach((w) => say("warning", w));
      } catch (error) {
        say("warning error", `Could not ${action} the campaign: ${error.message}`);
      } finally {
        button.disabled = false;
      }
    });
  });
})();
