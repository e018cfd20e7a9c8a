(function () {
  "use strict";
  // Status filter for the table of checks: one button per status, plus "all".
  var buttons = document.querySelectorAll("[data-filter]");
  function applyFilter(status) {
    var rows = document.querySelectorAll("#checks tbody tr[data-status]");
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = status !== "all" && rows[i].getAttribute("data-status") !== status;
    }
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].setAttribute("aria-pressed", buttons[j].getAttribute("data-filter") === status ? "true" : "false");
    }
    var shown = document.querySelectorAll("#checks tbody tr[data-status]:not([hidden])").length;
    var out = document.getElementById("filter-count");
    if (out) { out.textContent = shown + " shown"; }
  }
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (ev) {
      applyFilter(ev.currentTarget.getAttribute("data-filter"));
    });
  }
  var m = /(?:^|[#&])status=(\w+)/.exec(window.location.hash);
  if (m) { applyFilter(m[1]); }

  // Copy buttons next to fix commands.
  function copyText(text, button) {
    function done(ok) {
      button.textContent = ok ? "copied" : "select and copy";
      setTimeout(function () { button.textContent = "copy"; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { fallback(); });
    } else {
      fallback();
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      done(ok);
    }
  }
  var copies = document.querySelectorAll("button.copy");
  for (var k = 0; k < copies.length; k++) {
    copies[k].addEventListener("click", function (ev) {
      var target = document.getElementById(ev.currentTarget.getAttribute("data-target"));
      if (target) { copyText(target.textContent, ev.currentTarget); }
    });
  }

  // Printing shows everything: open folded sections and every filtered row.
  window.addEventListener("beforeprint", function () {
    var folded = document.querySelectorAll("details");
    for (var i = 0; i < folded.length; i++) {
      if (!folded[i].open) { folded[i].open = true; folded[i].setAttribute("data-print-opened", ""); }
    }
  });
  window.addEventListener("afterprint", function () {
    var opened = document.querySelectorAll("details[data-print-opened]");
    for (var i = 0; i < opened.length; i++) { opened[i].open = false; opened[i].removeAttribute("data-print-opened"); }
  });
})();
