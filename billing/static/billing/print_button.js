// The document page's Print button: here, not in an onclick attribute, which the pages'
// Content-Security-Policy (config/content_policy.py) would block.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-print]").forEach((button) => {
    button.addEventListener("click", () => window.print());
  });
});
