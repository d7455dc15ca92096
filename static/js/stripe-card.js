// Stripe mode's add-a-payment-method form. Card numbers go from Stripe's card field, and PayPal and bank
// accounts from the Payment Element, straight to Stripe; our server only creates a SetupIntent of the chosen
// type and later receives the confirmed SetupIntent's id.
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
    var cardFields = form.querySelector("[data-card-fields]");
    var paymentFields = form.querySelector("[data-payment-element-fields]");
    // The Payment Element for the type chosen, made again when the customer picks another type.
    var payment = { type: null, elements: null };

    function chosenType() {
      var checked = form.querySelector("[name=method_type]:checked") || form.querySelector("[name=method_type]");
      return checked ? checked.value : "card";
    }

    function what() {
      return chosenType() === "card" ? "Your card" : "Your payment method";
    }

    function showType() {
      var type = chosenType();
      var isCard = type === "card";
      cardFields.hidden = !isCard;
      paymentFields.hidden = isCard;
      if (isCard || payment.type === type) return;
      if (payment.element) payment.element.unmount();
      // Deferred setup: the element is shown before any SetupIntent exists; one is made on Confirm.
      payment.elements = stripe.elements({ mode: "setup", currency: form.dataset.currency,
                                           paymentMethodTypes: [type] });
      payment.element = payment.elements.create("payment");
      payment.element.mount(form.querySelector("[data-payment-element]"));
      payment.type = type;
    }

    function fail(message) {
      // The next attempt may differ (another card, "Save as default" ticked): the processor must see a
      // new request, not a repeat of this one under the same idempotency key.
      form.querySelector("[name=idempotency_key]").value = newKey();
      errorBox.hidden = false;
      errorBox.textContent = message || (what() + " could not be saved. Please try again.");
      submit.disabled = false;
    }

    function createSetupIntent() {
      var body = new FormData(form);
      body.delete("cardholder_name");  // not the server's to know; Stripe gets it with the card
      return fetch(form.dataset.setupIntentUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": body.get("csrf_token"), "Accept": "application/json" }
      }).then(function (response) {
        // An expired form or an outage answers with an HTML page, whose text is no message for a customer.
        return response.json().catch(function () { return {}; })
          .then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (answer) {
        if (!answer.ok || !answer.data.client_secret) {
          throw new Error(answer.data.error || (what() + " could not be saved. Please reload the page and try again."));
        }
        return answer.data.client_secret;
      });
    }

    function saved(setupIntent) {
      form.querySelector("[name=setup_intent]").value = setupIntent.id;
      form.dataset.confirmed = "1";
      form.submit();
    }

    Array.prototype.forEach.call(form.querySelectorAll("[data-method-type]"), function (radio) {
      radio.addEventListener("change", function () { errorBox.hidden = true; showType(); });
    });
    showType();

    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmed) return;  // second pass: the real POST with the SetupIntent id
      event.preventDefault();
      errorBox.hidden = true;
      submit.disabled = true;
      if (chosenType() !== "card") { confirmWithPaymentElement(); return; }
      var name = form.querySelector("[name=cardholder_name]").value.trim();
      if (!name) { fail("Enter the name on the card."); return; }
      createSetupIntent().then(function (clientSecret) {
        return stripe.confirmCardSetup(clientSecret, {
          payment_method: { card: card, billing_details: { name: name } }
        });
      }).then(function (result) {
        if (result.error) { fail(result.error.message); return; }
        saved(result.setupIntent);
      }).catch(function (error) { fail(error && error.message); });
    });

    function confirmWithPaymentElement() {
      // Stripe checks the fields first, then we make the SetupIntent, then Stripe confirms it: PayPal leaves
      // for its approval page and comes back to the return URL; a bank account answers here.
      payment.elements.submit().then(function (checked) {
        if (checked.error) throw new Error(checked.error.message);
        return createSetupIntent();
      }).then(function (clientSecret) {
        return stripe.confirmSetup({ elements: payment.elements, clientSecret: clientSecret, redirect: "if_required",
                                     confirmParams: { return_url: form.dataset.returnUrl } });
      }).then(function (result) {
        if (result.error) { fail(result.error.message); return; }
        saved(result.setupIntent);
      }).catch(function (error) { fail(error && error.message); });
    }
  }

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function scan(root) {
    var forms = (root.matches && root.matches("[data-stripe-card-form]")) ? [root] : root.querySelectorAll("[data-stripe-card-form]");
    Array.prototype.forEach.call(forms, mount);
    // Back from PayPal: the page's form posts the SetupIntent id; send it without waiting for a press.
    var back = (root.matches && root.matches("[data-setup-return]")) ? [root] : root.querySelectorAll("[data-setup-return]");
    Array.prototype.forEach.call(back, function (form) {
      if (form.dataset.sent) return;
      form.dataset.sent = "1";
      form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
