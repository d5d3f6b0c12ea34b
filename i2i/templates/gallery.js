(() => {
  "use strict";
  const links = [...document.querySelectorAll("a[data-v]")];
  const viewer = document.getElementById("viewer");
  if (!viewer || !links.length) return;
  const stage = viewer.querySelector(".v-stage");
  const prev = viewer.querySelector(".v-prev");
  const next = viewer.querySelector(".v-next");
  const count = viewer.querySelector(".v-count");
  const title = viewer.querySelector(".v-title");
  const detail = viewer.querySelector(".v-detail");
  const full = viewer.querySelector(".v-full");
  const back = viewer.querySelector(".v-back");
  const byId = new Map(links.map((link, i) => [link.id, i]));
  let current = -1;
  let image = null;
  let pushed = false;

  function hashId() {
    try { return decodeURIComponent(location.hash.slice(1)); } catch (e) { return ""; }
  }

  function setHash(id, push) {
    const url = id ? "#" + encodeURIComponent(id) : location.pathname + location.search;
    try {
      if (push) history.pushState({ viewer: id }, "", url);
      else history.replaceState(id ? { viewer: id } : null, "", url);
      return true;
    } catch (e) {
      return false;
    }
  }

  function preload(i) {
    if (i < 0 || i >= links.length) return;
    const img = new Image();
    img.sizes = "100vw";
    img.srcset = links[i].dataset.srcset;
    img.src = links[i].href;
  }

  function show(i) {
    i = Math.max(0, Math.min(links.length - 1, i));
    const link = links[i];
    const section = link.closest(".photo");
    const img = document.createElement("img");
    img.alt = link.querySelector("img").alt;
    img.width = Number(link.dataset.w);
    img.height = Number(link.dataset.h);
    img.sizes = "100vw";
    img.srcset = link.dataset.srcset;
    img.src = link.href;
    img.draggable = false;
    img.style.maxWidth = "min(100%, " + img.width + "px)";
    img.style.maxHeight = "min(100%, " + img.height + "px)";
    if (image) image.replaceWith(img); else stage.prepend(img);
    image = img;
    current = i;
    count.textContent = (i + 1) + " / " + links.length;
    title.textContent = (section ? section.dataset.title + " — " : "") + link.dataset.label;
    detail.textContent = section ? section.dataset.detail : "";
    full.href = link.href;
    prev.hidden = i === 0;
    next.hidden = i === links.length - 1;
    if (viewer.hidden) {
      viewer.hidden = false;
      document.body.classList.add("viewing");
      viewer.focus({ preventScroll: true });
    }
    preload(i + 1);
    preload(i - 1);
  }

  function hide() {
    if (viewer.hidden) return;
    viewer.hidden = true;
    document.body.classList.remove("viewing");
    if (image) { image.remove(); image = null; }
    if (current >= 0) links[current].focus();
  }

  function open(i) {
    pushed = setHash(links[i].id, true);
    show(i);
  }

  function go(step) {
    const i = Math.max(0, Math.min(links.length - 1, current + step));
    if (i === current) return;
    setHash(links[i].id, false);
    show(i);
  }

  function close() {
    if (viewer.hidden) return;
    if (pushed) {
      pushed = false;
      history.back();
    } else {
      setHash("", false);
    }
    hide();
  }

  function route() {
    const i = byId.get(hashId());
    if (i === undefined) { pushed = false; hide(); } else show(i);
  }

  links.forEach((link, i) => link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    open(i);
  }));
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  back.addEventListener("click", (event) => { event.preventDefault(); close(); });
  stage.addEventListener("click", (event) => { if (event.target === stage) close(); });
  document.addEventListener("keydown", (event) => {
    if (viewer.hidden || event.altKey || event.ctrlKey || event.metaKey) return;
    const moves = { ArrowRight: 1, ArrowDown: 1, PageDown: 1, ArrowLeft: -1, ArrowUp: -1, PageUp: -1 };
    if (event.key in moves) go(moves[event.key]);
    else if (event.key === "Home") go(-links.length);
    else if (event.key === "End") go(links.length);
    else if (event.key === "Escape") close();
    else return;
    event.preventDefault();
  });

  let touch = null;
  stage.addEventListener("touchstart", (event) => {
    touch = event.touches.length === 1
      ? { x: event.touches[0].clientX, y: event.touches[0].clientY }
      : null;
  }, { passive: true });
  stage.addEventListener("touchend", (event) => {
    if (!touch || event.changedTouches.length !== 1) return;
    const dx = event.changedTouches[0].clientX - touch.x;
    const dy = event.changedTouches[0].clientY - touch.y;
    touch = null;
    if (Math.abs(dx) > 40 && Math.abs(dx) > 1.5 * Math.abs(dy)) go(dx < 0 ? 1 : -1);
    else if (dy > 90 && dy > 2 * Math.abs(dx)) close();
  }, { passive: true });

  window.addEventListener("popstate", route);
  window.addEventListener("hashchange", route);
  if (byId.has(hashId())) show(byId.get(hashId()));
})();
