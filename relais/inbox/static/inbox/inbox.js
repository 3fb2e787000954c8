// Keyboard-first inbox: shortcuts, help overlay (?), canned replies, leaving a conversation.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function go(selector) {
    var link = document.querySelector(selector);
    if (link) { window.location.href = link.href; }
  }

  function focus(selector) {
    var field = document.querySelector(selector);
    if (field) { field.focus(); }
  }

  // The inbox list: j/k move a cursor over the rows, Enter or o opens the chosen one.
  var selected = null;

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.inbox tbody tr[data-conversation]")); }

  function mark() {
    rows().forEach(function (row) {
      var on = row.dataset.conversation === selected;
      row.classList.toggle("selected", on);
      if (on) { row.setAttribute("aria-selected", "true"); } else { row.removeAttribute("aria-selected"); }
    });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var index = all.findIndex(function (row) { return row.dataset.conversation === selected; });
    index = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    selected = all[index].dataset.conversation;
    mark();
    all[index].scrollIntoView({ block: "nearest" });
  }

  function openSelected() {
    var row = document.querySelector("table.inbox tbody tr.selected a");
    if (row) { window.location.href = row.href; }
  }

  function resolve() {
    var form = document.getElementById("status-form");
    if (!form) { return; }
    form.querySelector("select[name=status]").value = "resolved";
    form.submit();
  }

  function takeIt() {
    var form = document.getElementById("assign-form");
    if (!form) { return; }
    form.querySelector("select[name=assignee]").value = form.dataset.me;
    form.submit();
  }

  function toggleHelp() {
    var help = document.getElementById("shortcuts-help");
    if (!help) { return; }
    if (help.open) { help.close(); } else { help.showModal(); }
  }

  function pick(index) {
    var buttons = document.querySelectorAll("button.suggestion");
    if (buttons[index]) { insertReply(buttons[index].dataset.text); }
  }

  var onConversation = function () { return !!document.getElementById("thread"); };

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var actions = {
      "?": toggleHelp,
      "j": function () { if (onConversation()) { go("#next-conversation"); } else { move(1); } },
      "k": function () { if (onConversation()) { go("#previous-conversation"); } else { move(-1); } },
      "o": openSelected,
      "Enter": openSelected,
      "u": function () { go("#back-to-inbox"); },
      "r": function () { focus("#reply-text"); },
      "n": function () { focus("#note-text"); },
      "a": function () { focus("#assignee-select"); },
      "t": takeIt,
      "e": resolve,
      "c": function () { focus("#canned-select"); },
      "g": function () { focus("#contact-link"); },
      "1": function () { pick(0); },
      "2": function () { pick(1); },
      "3": function () { pick(2); }
    };
    var act = actions[event.key];
    if (act) { event.preventDefault(); act(); }
  });

  document.addEventListener("htmx:afterSwap", mark);

  function insertReply(text) {
    var reply = document.getElementById("reply-text");
    if (!reply) { return; }
    reply.value = reply.value ? reply.value + "\n" + text : text;
    reply.dispatchEvent(new Event("input", { bubbles: true }));  // saves the draft
    reply.focus();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.suggestion");
    if (button) { insertReply(button.dataset.text); }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id !== "canned-select" || !event.target.value) { return; }
    insertReply(event.target.value);
    event.target.value = "";
  });

  // Leaving a conversation clears the collision warning for colleagues at once.
  window.addEventListener("pagehide", function () {
    var presence = document.getElementById("presence");
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!presence || !token || !navigator.sendBeacon) { return; }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", token.value);
    data.append("leaving", "1");
    navigator.sendBeacon(presence.getAttribute("hx-post"), data);
  });

  // The script loads deferred: say when the shortcuts answer (browser tests wait for it).
  document.documentElement.dataset.shortcuts = "on";
})();
