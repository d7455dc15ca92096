// Stripe mode's add-a-card form. The card number goes from Stripe's card field straight to Stripe;
// our server only creates a SetupIntent and later receives the confirmed SetupIntent's id.
(function () {
  "use strict";

  function mount(form) {
    if (form.dataset.mounted || typeof Stripe === "undefined") return;
    form.dataset.mounted = "1";
    var stripe = Stripe(form.dataset.publishableKey);
    var card = stripe.elements().create("card");
    card.mount(form.querySelector("[data-card-element]"));
    var errorBox = form.querySelector("[data-card-error]");
    var submit = form.querySelector("button[type=submit]");

    function fail(message) {
      // The next attempt may differ (another card, "Save as default" ticked): the processor must see a
      // new request, not a repeat of this one under the same idempotency key.
      form.querySelector("[name=idempotency_key]").value = newKey();
      errorBox.hidden = false;
      errorBox.textContent = message || "Your card could not be saved. Please try again.";
      submit.disabled = false;
    }

    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmed) return;  // second pass: the real POST with the SetupIntent id
      event.preventDefault();
      errorBox.hidden = true;
      submit.disabled = true;
      var name = form.querySelector("[name=cardholder_name]").value.trim();
      if (!name) { fail("Enter the name on the card."); return; }
      var body = new FormData(form);
      fetch(form.dataset.setupIntentUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": body.get("csrf_token"), "Accept": "application/json" }
      }).then(function (response) {
        // An expired form or an outage answers with an HTML page, whose text is no message for a customer.
        return response.json().catch(function () { return {}; })
          .then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (answer) {
        if (!answer.ok || !answer.data.client_secret) {
          throw new Error(answer.data.error || "Your card could not be saved. Please reload the page and try again.");
        }
        return stripe.confirmCardSetup(answer.data.client_secret, {
          payment_method: { card: card, billing_details: { name: name } }
        });
      }).then(function (result) {
        if (result.error) { fail(result.error.message); return; }
        form.querySelector("[name=setup_intent]").value = result.setupIntent.id;
        form.dataset.confirmed = "1";
        form.submit();
      }).catch(function (error) { fail(error && error.message); });
    });
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function scan(root) {
    var forms = (root.matches && root.matches("[data-stripe-card-form]")) ? [root] : root.querySelectorAll("[data-stripe-card-form]");
    Array.prototype.forEach.call(forms, mount);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
