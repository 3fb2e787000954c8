// Calendar: drag a scheduled post to another day (month) or day and hour (week), or focus it
// and use the arrow keys. Both submit the page's move form; the server checks everything.
(function () {
  "use strict";
  var form = document.getElementById("move-form");
  if (!form) return;

  function move(target, day, hour) {
    form.elements.target.value = target;
    form.elements.day.value = day;
    form.elements.hour.value = hour === undefined ? "" : hour;
    form.submit();
  }

  function shiftedDay(day, days) {
    var moment = new Date(day + "T12:00:00Z");
    moment.setUTCDate(moment.getUTCDate() + days);
    return moment.toISOString().slice(0, 10);
  }

  document.querySelectorAll("[data-target]").forEach(function (entry) {
    entry.addEventListener("dragstart", function (event) {
      event.dataTransfer.setData("text/plain", entry.dataset.target);
      event.dataTransfer.effectAllowed = "move";
    });
    entry.addEventListener("keydown", function (event) {
      var cell = entry.closest("td[data-day]");
      var days = { ArrowLeft: -1, ArrowRight: 1 }[event.key] || 0;
      var hours = cell.dataset.hour === undefined ? 0 : { ArrowUp: -1, ArrowDown: 1 }[event.key] || 0;
      if (!days && !hours) return;
      event.preventDefault();
      var day = shiftedDay(cell.dataset.day, days);
      if (cell.dataset.hour === undefined) return move(entry.dataset.target, day);
      var hour = Number(cell.dataset.hour) + hours;
      if (hour < 0 || hour > 23) day = shiftedDay(day, hour < 0 ? -1 : 1);
      move(entry.dataset.target, day, (hour + 24) % 24);
    });
  });

  document.querySelectorAll("td[data-day]").forEach(function (cell) {
    cell.addEventListener("dragover", function (event) {
      event.preventDefault();
      cell.classList.add("pub-drop");
    });
    cell.addEventListener("dragleave", function () { cell.classList.remove("pub-drop"); });
    cell.addEventListener("drop", function (event) {
      event.preventDefault();
      var target = event.dataTransfer.getData("text/plain");
      if (target) move(target, cell.dataset.day, cell.dataset.hour);
    });
  });
})();
