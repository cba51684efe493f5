// The new experiment form: "Add an arm" adds an empty row, "Remove" takes a row away (the
// last row stays, emptied). Without JavaScript the rows the page came with still post.
// The leaderboard's scorer select shows the chosen scorer's distributions at once. Delegated
// from the document: the board is swapped in again while it polls.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select) select.form.submit();
});

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.querySelector("#arm-rows tbody");
  const add = document.getElementById("add-arm");
  if (!rows || !add) return;
  add.addEventListener("click", () => {
    const row = rows.querySelector(".arm-row").cloneNode(true);
    row.querySelector("input").value = "";
    rows.appendChild(row);
    row.querySelector("input").focus();
  });
  rows.addEventListener("click", (event) => {
    const button = event.target.closest(".remove-arm");
    if (!button) return;
    const row = button.closest(".arm-row");
    if (rows.querySelectorAll(".arm-row").length > 1) row.remove();
    else row.querySelector("input").value = "";
  });
});
