// The review page's questions by keyboard. One question is highlighted: keys 1-9 answer it (a
// rating, a label, toggle one of several labels, or the next best variant of a ranking), 0
// clears it, q moves to the next question (Shift+q: the one before; on a text question, into
// its box), Enter types in a highlighted text question. The answers go with the accept and
// reject forms; accepting or rejecting without a required answer says so here instead.
(function () {
  "use strict";

  const form = document.getElementById("answers-form");
  if (!form) return;
  const questions = Array.from(form.querySelectorAll("fieldset.question"));
  const error = document.getElementById("questions-error");
  let active = 0;

  function typingIn(target) {
    return target.closest && target.closest("input[type=text], input:not([type]), textarea, select, [contenteditable]");
  }

  function activate(index) {
    active = (index + questions.length) % questions.length;
    questions.forEach(function (question, i) {
      question.classList.toggle("active", i === active);
      if (i === active) question.setAttribute("aria-current", "true");
      else question.removeAttribute("aria-current");
    });
  }

  function rankingOf(question) {
    const value = question.querySelector(".ranking-value");
    return value && value.value ? value.value.split(",") : [];
  }

  function showRanking(question) {
    const order = rankingOf(question);
    question.querySelectorAll("[data-variant]").forEach(function (button) {
      const place = order.indexOf(button.dataset.variant);
      button.parentElement.querySelector(".place").textContent = place >= 0 ? "ranked " + (place + 1) : "";
    });
  }

  function answered(question) {
    const kind = question.dataset.kind;
    if (kind === "text") return question.querySelector("textarea").value.trim() !== "";
    if (kind === "ranking") {
      return rankingOf(question).length === question.querySelectorAll("[data-variant]").length;
    }
    return question.querySelector("input[data-choice]:checked") !== null;
  }

  function rank(question, button) {
    const value = question.querySelector(".ranking-value");
    const order = rankingOf(question);
    if (order.indexOf(button.dataset.variant) < 0) order.push(button.dataset.variant);
    value.value = order.join(",");
    showRanking(question);
    return order.length === question.querySelectorAll("[data-variant]").length;
  }

  function choose(question, number) {
    const choice = question.querySelector('[data-choice="' + number + '"]');
    if (!choice) return;
    const kind = question.dataset.kind;
    if (kind === "labels") {
      choice.checked = !choice.checked;
    } else if (kind === "ranking") {
      if (rank(question, choice)) activate(active + 1);
    } else {
      choice.checked = true;
      if (active < questions.length - 1) activate(active + 1);
    }
  }

  function clear(question) {
    question.querySelectorAll("input[data-choice]").forEach(function (input) { input.checked = false; });
    const value = question.querySelector(".ranking-value");
    if (value) { value.value = ""; showRanking(question); }
    const text = question.querySelector("textarea");
    if (text) text.value = "";
  }

  document.addEventListener("keydown", function (event) {
    if (typingIn(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    const question = questions[active];
    if (/^[1-9]$/.test(event.key)) {
      event.preventDefault();
      choose(question, event.key);
    } else if (event.key === "0") {
      event.preventDefault();
      clear(question);
    } else if (event.key === "Enter" && question.dataset.kind === "text" && !event.target.closest("button, a")) {
      event.preventDefault();
      question.querySelector("textarea").focus();
    } else if (event.key === "q" || event.key === "Q") {
      event.preventDefault();
      activate(active + (event.key === "Q" ? -1 : 1));
      const text = questions[active].querySelector("textarea");
      if (text && event.key === "q") text.focus();
    }
  });

  questions.forEach(function (question, index) {
    question.addEventListener("click", function (event) {
      activate(index);
      const button = event.target.closest("[data-variant]");
      if (button) rank(question, button);
    });
    // A clicked radio or box keeps no focus: the decision keys (a, r, s...) go on working.
    question.addEventListener("change", function (event) {
      if (event.target.matches("input[type=radio], input[type=checkbox]")) event.target.blur();
    });
    showRanking(question);
  });

  // The answers travel with the accept, reject and skip forms of this page.
  document.querySelectorAll('form[action*="/decide"]').forEach(function (decision) {
    decision.addEventListener("submit", function (event) {
      const skipping = event.submitter && event.submitter.value === "skip";
      const missing = questions.filter(function (q) { return q.hasAttribute("data-required") && !answered(q); });
      if (skipping || missing.length === 0) return;
      event.preventDefault();
      error.textContent = "Answer the required question" + (missing.length > 1 ? "s " : " ") +
        missing.map(function (q) { return q.dataset.question; }).join(", ") + " first.";
      error.hidden = false;
      activate(questions.indexOf(missing[0]));
      missing[0].scrollIntoView({ block: "center" });
    });
    decision.addEventListener("formdata", function (event) {
      new FormData(form).forEach(function (value, name) {
        if (name.indexOf("answer.") === 0) event.formData.append(name, value);
      });
    });
  });
})();
