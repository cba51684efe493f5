// Errors of htmx requests, shown on the page. htmx swaps no 4xx/5xx answer and only logs a
// failed or timed-out request to the console, so a refused click (a 409 on add, a 503 on
// cancel) looked like nothing happened. The message goes just above the element the request
// was to update, so that it survives that element's own refresh, or into the page's flash
// area (#flash). It is text only: nothing of an answer is ever inserted as HTML.
(function () {
  "use strict";

  let nextKey = 1;

  function fallback(status) {
    if (status === 403) return "that is not allowed";
    if (status === 404) return "that is not there any more: reload the page";
    if (status === 409) return "that changed meanwhile: reload the page and try again";
    if (status === 429) return "too many requests: wait a moment and try again";
    if (status >= 500) return "the server could not answer: try again in a moment";
    return "that did not work";
  }

  // The message a Sift error answer carries: JSON {"error": ...} from the API, or the
  // [data-error-message] element of templates/components/error_message.html.
  function carried(xhr) {
    const type = xhr.getResponseHeader("content-type") || "";
    const body = xhr.responseText || "";
    try {
      if (type.indexOf("json") !== -1) {
        const data = JSON.parse(body);
        if (data && typeof data.error === "string") return data.error;
        if (data && typeof data.detail === "string") return data.detail;
      } else if (type.indexOf("html") !== -1) {
        // An inert document: nothing in it loads or runs; only its text is read.
        const found = new DOMParser().parseFromString(body, "text/html")
          .querySelector("[data-error-message]");
        if (found) return found.textContent.trim();
      }
    } catch (ignored) {
      // not what Sift sends (a proxy's page): the status says enough
    }
    return "";
  }

  function describe(xhr) {
    let text = carried(xhr) || fallback(xhr.status);
    const wait = parseInt(xhr.getResponseHeader("retry-after") || "", 10);
    if (wait > 0 && text.indexOf("try again") === -1) text += " (try again in " + wait + " s)";
    return "Error " + xhr.status + " · " + text;
  }

  // The element a message is about and goes above: the request's target (a whole table rather
  // than one of its rows), else the element that sent it; null for the flash area. (After an
  // outerHTML swap the old target is detached, but its id still names the place.)
  function placeOf(detail) {
    for (const candidate of [detail.target, detail.elt]) {
      if (!candidate || candidate === document.body || candidate.tagName === "MAIN") continue;
      return candidate.closest("table") || candidate;
    }
    return null;
  }

  function keyOf(element) {
    if (!element) return "flash";
    if (element.id) return "#" + element.id;
    if (!element.dataset.errorKey) element.dataset.errorKey = "k" + nextKey++;
    return element.dataset.errorKey;
  }

  function messagesFor(key) {
    return document.querySelectorAll('.htmx-error[data-for="' + CSS.escape(key) + '"]');
  }

  function verbOf(detail) {
    return ((detail.requestConfig && detail.requestConfig.verb) || "get").toLowerCase();
  }

  function show(detail, text) {
    const place = placeOf(detail);
    const key = keyOf(place);
    const verb = verbOf(detail);
    // One message per place and kind: a poll's failure never hides what a click was told.
    messagesFor(key).forEach(function (old) {
      if (verb !== "get" || old.dataset.verb === "get") old.remove();
    });
    const box = document.createElement("div");
    box.className = "alert alert-error htmx-error";
    box.setAttribute("role", "alert");
    box.dataset.for = key;
    box.dataset.verb = verb;
    const message = document.createElement("span");
    message.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "link htmx-error-close";
    close.setAttribute("aria-label", "dismiss");
    close.textContent = "×";
    box.append(message, " ", close);
    if (place && place.isConnected && place.parentElement) {
      place.parentElement.insertBefore(box, place);
    } else {
      const flash = document.getElementById("flash") || document.body;
      flash.prepend(box);
    }
    // A click's answer is looked for where the click was; a poll's failure is not worth a jump.
    if (verb !== "get") box.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:responseError", function (event) {
    show(event.detail, describe(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function (event) {
    show(event.detail, "Sift did not answer: check the connection (is Sift running?) and try again.");
  });
  document.addEventListener("htmx:timeout", function (event) {
    show(event.detail, "Sift took too long to answer: try again in a moment.");
  });

  // A request that works again takes its target's stale error away: a poll clears what a poll
  // showed; an action that goes through clears any.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) return;
    const action = verbOf(event.detail) !== "get";
    messagesFor(keyOf(placeOf(event.detail))).forEach(function (box) {
      if (action || box.dataset.verb === "get") box.remove();
    });
  });

  document.addEventListener("click", function (event) {
    const close = event.target.closest && event.target.closest(".htmx-error-close");
    if (close) close.parentElement.remove();
  });
})();
