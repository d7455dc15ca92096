// The portal's only script (besides htmx and, in Stripe mode, the card field glue).
// Three-dot card menus: <details class="menu" data-menu> already opens and closes without JavaScript.
// This file adds menu-button behaviour for keyboards and screen readers: ARIA roles, Enter/Space/ArrowDown
// open and focus the first item, arrows move, Home/End jump, Escape and Tab close, a click outside closes.
(function () {
  "use strict";

  // Toasts float over the page only when this script can also clear them; without it they stay in the
  // page flow (app.css), so a message never covers a button for good.
  document.documentElement.classList.add("js");

  function items(menu) {
    return Array.prototype.slice.call(menu.querySelectorAll(".menu-item"));
  }

  function enhance(root) {
    var menus = (root.matches && root.matches("[data-menu]")) ? [root] : root.querySelectorAll("[data-menu]");
    Array.prototype.forEach.call(menus, function (menu) {
      if (menu.dataset.enhanced) return;
      menu.dataset.enhanced = "1";
      var button = menu.querySelector("summary");
      var list = menu.querySelector(".menu-list");
      list.id = list.id || "menu-" + Math.random().toString(36).slice(2);
      button.setAttribute("aria-haspopup", "menu");
      button.setAttribute("aria-controls", list.id);
      button.setAttribute("aria-expanded", menu.open ? "true" : "false");
      list.setAttribute("role", "menu");
      list.setAttribute("aria-label", button.getAttribute("aria-label") || "Actions");
      Array.prototype.forEach.call(list.querySelectorAll("form"), function (f) { f.setAttribute("role", "none"); });
      items(menu).forEach(function (item) {
        item.setAttribute("role", "menuitem");
        item.setAttribute("tabindex", "-1");
      });
      menu.addEventListener("toggle", function () {
        button.setAttribute("aria-expanded", menu.open ? "true" : "false");
      });
    });
  }

  function open(menu, focusLast) {
    closeAll(menu);
    menu.open = true;
    var all = items(menu);
    if (all.length) (focusLast ? all[all.length - 1] : all[0]).focus();
  }

  function close(menu, returnFocus) {
    if (!menu.open) return;
    menu.open = false;
    if (returnFocus) menu.querySelector("summary").focus();
  }

  function closeAll(except) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-menu][open]"), function (m) {
      if (m !== except) close(m, false);
    });
  }

  document.addEventListener("keydown", function (event) {
    var menu = event.target.closest && event.target.closest("[data-menu]");
    if (!menu) return;
    var onButton = event.target.tagName === "SUMMARY";
    var all = items(menu);
    var index = all.indexOf(document.activeElement);
    switch (event.key) {
      case "Enter":
      case " ":
        if (onButton) { event.preventDefault(); menu.open ? close(menu, true) : open(menu, false); }
        break;
      case "ArrowDown":
        event.preventDefault();
        if (onButton || !menu.open) open(menu, false);
        else all[(index + 1) % all.length].focus();
        break;
      case "ArrowUp":
        event.preventDefault();
        if (onButton || !menu.open) open(menu, true);
        else all[(index - 1 + all.length) % all.length].focus();
        break;
      case "Home":
        if (menu.open && !onButton) { event.preventDefault(); all[0].focus(); }
        break;
      case "End":
        if (menu.open && !onButton) { event.preventDefault(); all[all.length - 1].focus(); }
        break;
      case "Escape":
        if (menu.open) { event.preventDefault(); close(menu, true); }
        break;
      case "Tab":
        close(menu, false);
        break;
    }
  });

  document.addEventListener("click", function (event) {
    var menu = event.target.closest && event.target.closest("[data-menu]");
    closeAll(menu);
  });

  // Show a toast when the server fails (5xx or no answer) instead of leaving the click unanswered.
  document.addEventListener("htmx:responseError", function () { showToast("Something went wrong. Please try again."); });
  document.addEventListener("htmx:sendError", function () { showToast("We couldn't reach the server. Check your connection."); });

  function showToast(message) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = "";
    var p = document.createElement("p");
    p.className = "toast-error";
    p.textContent = message;
    toast.appendChild(p);
    scheduleToastClear();
  }

  // Toasts fade after a while; they are also announced by the live region when they appear.
  var toastTimer = null;
  function scheduleToastClear() {
    var toast = document.getElementById("toast");
    if (!toast || !toast.textContent.trim()) return;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.textContent = ""; }, 8000);
  }
  document.addEventListener("htmx:oobAfterSwap", scheduleToastClear);

  // After a swap that removed the focused element (a menu item, a Save button), put focus somewhere
  // sensible instead of letting it fall back to <body>: the swapped section's heading.
  document.addEventListener("htmx:afterSettle", function (event) {
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var target = event.detail.target;
    var section = target && target.id ? document.getElementById(target.id) : null;
    if (!section) return;
    var heading = section.querySelector("h2, h1");
    if (!heading) return;
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  });

  // A sign-in link's landing page posts its token at once (the page's button does it with JavaScript off).
  function autoSubmit() {
    var form = document.querySelector("form[data-auto-submit]");
    if (form && !form.dataset.submitted) {
      form.dataset.submitted = "1";
      form.submit();
    }
  }

  // An invoice's details open in place under its row; "Hide details" empties that row again (it stays as
  // the place the next opening fills) and gives focus back to the invoice's number.
  document.addEventListener("click", function (event) {
    var hide = event.target.closest && event.target.closest("[data-close-details]");
    if (!hide) return;
    var row = hide.closest("tr");
    var opener = document.querySelector('[aria-controls="' + row.id + '"]');
    row.textContent = "";
    row.hidden = true;
    if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var row = event.detail.target;
    if (!row || !row.classList || !row.classList.contains("details-row")) return;
    var opener = document.querySelector('[aria-controls="' + row.id + '"]');
    if (opener) opener.setAttribute("aria-expanded", "true");
  });

  // Forms that wait for the processor (data-busy: add a card, Pay now, Retry payment, refunds, the sandbox's
  // pages) mark their buttons busy while the request runs: aria-busy for screen readers, disabled so a second
  // press cannot send it twice, and the spinner in app.css. htmx forms: from the request's start to its end.
  function busy(form, on) {
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
      if (on) { button.setAttribute("aria-busy", "true"); button.disabled = true; }
      else { button.removeAttribute("aria-busy"); button.disabled = false; }
    });
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("form[data-busy]")) busy(form, true);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("form[data-busy]") && document.contains(form)) busy(form, false);
  });
  // Plain forms (Pay now leaves for the payment page): busy from the submit until the next page. A form
  // another script or htmx took over (its submit default prevented) is left to them.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-busy]") || event.defaultPrevented) return;
    if (form.dataset.sending) { event.preventDefault(); return; }
    form.dataset.sending = "1";
    setTimeout(function () { busy(form, true); }, 0);  // after the browser took the pressed button's value
  });
  // Back to a page kept in the browser's cache: its buttons work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    Array.prototype.forEach.call(document.querySelectorAll("form[data-busy]"), function (form) {
      delete form.dataset.sending;
      busy(form, false);
    });
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); scheduleToastClear(); autoSubmit(); });
  document.addEventListener("htmx:load", function (event) { enhance(event.target); });
})();
