// NextMavens dashboard: the few things a page does without reloading. Written for this service, no library.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The org switcher goes on choosing (its button stays for keyboards without script).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // Copy buttons.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.getElementById(button.dataset.copy).textContent;
      navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; });
    });
  });
  // The live log tail: server-sent events, one line each.
  var logs = document.querySelector("form[data-logs]");
  if (logs) {
    var source = null;
    logs.addEventListener("submit", function (event) {
      event.preventDefault();
      var out = document.getElementById("log-lines");
      if (source) { source.close(); }
      out.textContent = "";
      source = new EventSource(logs.dataset.logs + "?service=" + encodeURIComponent(logs.elements.service.value));
      source.onmessage = function (message) {
        out.textContent += message.data + "\n";
        out.scrollTop = out.scrollHeight;
      };
      source.addEventListener("end", function () { source.close(); });
      source.onerror = function () { source.close(); };
    });
  }
  // An app's active release, asked of the host once the page is shown (the page never waits for it).
  document.querySelectorAll("td[data-release]").forEach(function (cell) {
    fetch(cell.dataset.release, { credentials: "same-origin" }).then(function (response) {
      return response.json();
    }).then(function (answer) {
      if (answer.error) { cell.textContent = "unknown (" + answer.error + ")"; return; }
      var r = answer.release;
      cell.textContent = r ? "r" + r.release + " (" + r.commit + ", " + r.created + ")" : "none deployed";
    }).catch(function () { cell.textContent = "unknown"; });
  });
  // Live state (server-sent events): each event is a JSON object of parts, each part's HTML rendered by the service
  // as the page renders it (escaped there), put in place of the element of that data-live-part.
  document.querySelectorAll("[data-live]").forEach(function (element) {
    var source = new EventSource(element.dataset.live);
    source.onmessage = function (message) {
      var parts = JSON.parse(message.data);
      Object.keys(parts).forEach(function (name) {
        document.querySelectorAll('[data-live-part="' + name + '"]').forEach(function (part) {
          if (part.innerHTML !== parts[name]) { part.innerHTML = parts[name]; }
        });
      });
    };
  });
  // WhatsApp pairing: ask for a fresh QR code every 3 s until the phone is connected, then show its number.
  var pairing = document.getElementById("pairing");
  var start = document.getElementById("wa-pair");
  if (pairing && start) {
    var rounds = 0;
    var step = function () {
      rounds += 1;
      fetch(pairing.dataset.pairing, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "csrf=" + encodeURIComponent(pairing.dataset.csrf)
      }).then(function (response) { return response.json(); }).then(function (answer) {
        var qr = document.getElementById("wa-qr");
        if (answer.error) { document.getElementById("wa-state").textContent = answer.error; return; }
        document.getElementById("wa-state").textContent = answer.state;
        if (answer.state === "open") {
          qr.hidden = true;
          start.hidden = true;
          document.getElementById("wa-number-value").textContent = answer.number || "";
          document.getElementById("wa-number").hidden = false;
          return;
        }
        if (answer.qr) { qr.src = answer.qr; qr.hidden = false; }
        if (rounds < 100) { setTimeout(step, 3000); }
      });
    };
    start.addEventListener("click", function () { start.disabled = true; step(); });
  }
});
