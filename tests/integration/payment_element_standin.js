// A stand-in for Stripe.js's Payment Element in setup mode, added to localstripe's Stripe.js stand-in (which
// has the card field only). It follows Stripe.js's documented calls: stripe.elements({mode: "setup",
// currency, paymentMethodTypes}), elements.create("payment"), element.mount/unmount, elements.submit() and
// stripe.confirmSetup({elements, clientSecret, confirmParams: {return_url}, redirect: "if_required"}).
// Real Stripe draws its fields in an iframe on its own origin; these fields sit in the page, so the tests
// can see that what is typed into them travels to "Stripe" only.
(function () {
  "use strict";
  var base = LOCALSTRIPE_BASE_API;
  var FIELDS = {
    paypal: [],
    us_bank_account: [["name", "Full name", "name"], ["email", "Email", "email"],
                      ["routing_number", "Routing number", "off"], ["account_number", "Account number", "off"]],
    sepa_debit: [["name", "Full name", "name"], ["email", "Email", "email"], ["iban", "IBAN", "off"]]
  };
  var MANDATE = {
    sepa_debit: "By providing your IBAN and confirming, you authorise (A) the merchant and Stripe, our payment " +
                "service provider, to send instructions to your bank to debit your account and (B) your bank " +
                "to debit your account in accordance with those instructions.",
    us_bank_account: "By confirming, you authorise the merchant to debit this account for future payments " +
                     "in accordance with the terms of your subscription.",
    paypal: "You will approve saving your PayPal account on PayPal's page."
  };

  function PaymentElement(elements) { this.elements = elements; this.node = null; }
  PaymentElement.prototype.mount = function (container) {
    var type = this.elements.type;
    var node = document.createElement("div");
    node.className = "standin-payment-element";
    node.setAttribute("data-standin-type", type);
    FIELDS[type].forEach(function (f) {
      var id = "pe-" + f[0];
      var wrap = document.createElement("div");
      wrap.className = "field";
      var label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = f[1];
      var input = document.createElement("input");
      input.id = id;
      input.setAttribute("data-pe", f[0]);
      input.autocomplete = f[2];
      wrap.appendChild(label);
      wrap.appendChild(input);
      node.appendChild(wrap);
    });
    var note = document.createElement("p");
    note.className = "hint";
    note.textContent = MANDATE[type];
    node.appendChild(note);
    container.appendChild(node);
    this.node = node;
  };
  PaymentElement.prototype.unmount = function () { if (this.node) this.node.remove(); this.node = null; };
  PaymentElement.prototype.on = function () {};

  function Elements(options) {
    this.type = options.paymentMethodTypes[0];
    this.currency = options.currency;
    this.element = null;
  }
  Elements.prototype.create = function (kind) {
    if (kind !== "payment") throw new Error("the stand-in only has the payment element");
    this.element = new PaymentElement(this);
    return this.element;
  };
  Elements.prototype.values = function () {
    var values = {};
    Array.prototype.forEach.call(this.element.node.querySelectorAll("[data-pe]"), function (input) {
      values[input.getAttribute("data-pe")] = input.value.trim();
    });
    return values;
  };
  Elements.prototype.submit = function () {
    var values = this.values();
    var missing = Object.keys(values).filter(function (k) { return !values[k]; });
    return Promise.resolve(missing.length ? { error: { type: "validation_error",
                                                      message: "Your account details are incomplete." } } : {});
  };

  var original = Stripe;
  Stripe = function (key) {
    var stripe = original(key);
    var cardElements = stripe.elements;
    stripe.elements = function (options) {
      return options && options.mode ? new Elements(options) : cardElements.call(stripe, options);
    };
    stripe.confirmSetup = function (args) {
      var elements = args.elements, values = elements.values();
      var data = { type: elements.type, billing_details: { name: values.name || null, email: values.email || null } };
      if (elements.type === "us_bank_account") {
        data.us_bank_account = { routing_number: values.routing_number, account_number: values.account_number,
                                 account_holder_type: "individual" };
      } else if (elements.type === "sepa_debit") {
        data.sepa_debit = { iban: values.iban };
      }
      var seti = args.clientSecret.split("_secret_")[0];
      return fetch(base + "/v1/setup_intents/" + seti + "/confirm", {
        method: "POST",
        body: JSON.stringify({ key: key, client_secret: args.clientSecret, payment_method_data: data,
                               return_url: (args.confirmParams || {}).return_url,
                               mandate_data: { customer_acceptance: { type: "online", online: { infer_from_client: true } } } })
      }).then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok || body.error) return { error: body.error || { message: "Stripe refused the request." } };
          var action = body.next_action || {};
          if (body.status === "requires_action" && action.type === "redirect_to_url") {
            window.location.assign(action.redirect_to_url.url);
            return new Promise(function () {});  // the page is leaving
          }
          return { setupIntent: body };
        });
      });
    };
    return stripe;
  };
})();
