// A usage import's page while a worker runs it (admin/billing/usage/import_job.html): the job's
// status is fetched again every two seconds and put in place, in a live region that a screen
// reader reads out when it changes. Reloading the whole page instead, as it did, threw the
// reader's place and the keyboard's focus back to the top every time (WCAG 2.2.1).
(function () {
  "use strict";
  const status = document.getElementById("job-status");
  if (!status || status.dataset.finished === "true") return;
  async function follow() {
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById("job-status");
        if (fresh && fresh.innerHTML !== status.innerHTML) {
          status.innerHTML = fresh.innerHTML;
          status.dataset.finished = fresh.dataset.finished;
        }
      }
    } catch (error) {
      // The network or the server hiccuped: the next try tells.
    }
    if (status.dataset.finished !== "true") window.setTimeout(follow, 2000);
  }
  window.setTimeout(follow, 2000);
})();
