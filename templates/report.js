// Sortable tables for the qualkit evidence report. Every table with the
// class "sortable" gets a button in each header cell. A click sorts the
// body rows by that column, and a second click reverses the order. A cell's
// data-sort attribute, when present, is the value sorted on. Without
// JavaScript the tables keep the order the report was written in.
(function () {
  "use strict";

  function sortValue(row, column) {
    var cell = row.cells[column];
    if (!cell) {
      return "";
    }
    var sortKey = cell.getAttribute("data-sort");
    return sortKey !== null ? sortKey : cell.textContent.trim();
  }

  function compareValues(left, right) {
    if (left === "" || right === "") {
      return (left === "") - (right === "");
    }
    var leftNumber = Number(left);
    var rightNumber = Number(right);
    if (!isNaN(leftNumber) && !isNaN(rightNumber)) {
      return leftNumber - rightNumber;
    }
    return left.localeCompare(right, undefined, { numeric: true, sensitivity: "base" });
  }

  function sortTable(table, column, button) {
    var header = button.parentNode;
    var descending = header.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, index) {
      row.setAttribute("data-position", String(index));
    });
    rows.sort(function (a, b) {
      var order = compareValues(sortValue(a, column), sortValue(b, column));
      if (order === 0) {
        order = Number(a.getAttribute("data-position")) - Number(b.getAttribute("data-position"));
        return order;
      }
      return descending ? -order : order;
    });
    rows.forEach(function (row) {
      body.appendChild(row);
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) {
      return;
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) {
        button.appendChild(header.firstChild);
      }
      header.appendChild(button);
      button.addEventListener("click", function () {
        sortTable(table, column, button);
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
})();
