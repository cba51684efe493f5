// Keyboard shortcuts of the review pages. An element with data-key="x" is what key x does:
// a <details> opens (and focuses its data-focus field), a field gets the focus, anything else
// is clicked. "?" shows the list of shortcuts; Ctrl+Enter saves the form being typed in.
(function () {
  "use strict";

  function typingIn(target) {
    return target.closest && target.closest("input, textarea, select, [contenteditable]");
  }

  function act(element) {
    if (element.tagName === "DETAILS") {
      element.open = true;
      const field = element.querySelector(element.dataset.focus || "textarea, input");
      if (field) field.focus();
    } else if (element.matches("input, textarea, select")) {
      element.focus();
    } else {
      element.click();
    }
  }

  function showShortcuts() {
    const dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.editor[open]").forEach(function (d) { d.open = false; });
      if (document.activeElement) document.activeElement.blur();
      return;
    }
    if (typingIn(event.target)) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && event.target.form) {
        event.preventDefault();
        event.target.form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?") {
      event.preventDefault();
      showShortcuts();
      return;
    }
    const element = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (!element) return;
    event.preventDefault();
    act(element);
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#show-shortcuts")) showShortcuts();
  });
})();
