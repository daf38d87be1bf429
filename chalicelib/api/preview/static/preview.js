// The preview page re-renders as the marketer types: it asks the same URL for the page again
// and swaps in the parts that changed. Same origin only (the CSP's connect-src allows no other).
(() => {
  "use strict";
  const form = document.getElementById("controls");
  if (!form) return;
  let timer = 0;
  let latest = 0;

  async function refresh(parts) {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (value !== "" || name === "template") params.append(name, value);
    }
    const url = form.getAttribute("action") + "?" + params;
    const mine = ++latest;
    document.body.classList.add("busy");
    try {
      const res = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      const text = await res.text();
      if (mine !== latest) return;
      if (!res.ok) {
        let message = text;
        try { message = JSON.parse(text).message || text; } catch (e) { /* not JSON */ }
        const result = document.getElementById("result");
        result.replaceChildren();
        const p = document.createElement("p");
        p.className = "problem";
        p.textContent = "The preview refused this request (" + res.status + "): " + message;
        result.append(p);
        return;
      }
      const fresh = new DOMParser().parseFromString(text, "text/html");
      for (const id of parts) {
        const here = document.getElementById(id);
        const there = fresh.getElementById(id);
        if (here && there) here.replaceWith(document.adoptNode(there));
      }
      history.replaceState(null, "", url);
    } finally {
      if (mine === latest) document.body.classList.remove("busy");
    }
  }

  form.addEventListener("input", (event) => {
    if (event.target.tagName === "SELECT") return; // handled by "change"
    clearTimeout(timer);
    timer = setTimeout(() => refresh(["result"]), 350);
  });
  form.addEventListener("change", (event) => {
    if (event.target.tagName !== "SELECT") return;
    clearTimeout(timer);
    refresh(["filter-values", "result"]);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    refresh(["filter-values", "result"]);
  });
})();
