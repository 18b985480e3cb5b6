// The admin's search-as-you-type pickers (billing.admin_toolkit.CheckedAutocomplete): select2
// draws a combobox named by the chosen value alone, and a search box named by nothing, so a
// screen reader announced "Nimbus" or "edit text", never which field it was (WCAG 4.1.2). Each is
// named by its field's label once the admin's autocomplete.js, loaded before this, has drawn it.
(function ($) {
  "use strict";
  function labelOf(select) {
    const label = select.id && document.querySelector(`label[for="${select.id}"]`);
    if (label && !label.id) label.id = `${select.id}_label`;
    return label;
  }
  function nameCombobox(select) {
    const label = labelOf(select);
    const combobox = select.nextElementSibling?.querySelector(".select2-selection");
    if (!label || !combobox) return;
    // The label first, then the chosen value select2 names it by.
    const chosen = combobox.getAttribute("aria-labelledby");
    combobox.setAttribute("aria-labelledby", chosen ? `${label.id} ${chosen}` : label.id);
  }
  function nameAll(root) {
    root.querySelectorAll("select.admin-autocomplete:not([name*=__prefix__])").forEach(nameCombobox);
  }
  // Ready handlers run in turn: autocomplete.js's, registered first, has drawn the pickers.
  $(function () { nameAll(document); });
  document.addEventListener("formset:added", (event) => nameAll(event.target));
  // select2 reports its events through jQuery only; the search box exists while it is open.
  $(document).on("select2:open", function (event) {
    const label = labelOf(event.target);
    const search = document.querySelector(".select2-container--open .select2-search__field");
    if (label && search) search.setAttribute("aria-label", label.textContent.replace(/:$/, ""));
  });
})(django.jQuery);
