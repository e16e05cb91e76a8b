// The dashboard's activity panel (package dashboard, activity.go): the latest entries of
// the activity log for the application chosen in #app, newest first, refreshed every 30
// seconds and when the application changes. Text only (textContent): nothing an entry
// holds is parsed as HTML.
"use strict";
(function(){
  const box=document.getElementById("activity");
  if(!box)return;
  const appSel=document.getElementById("app");
  const cell=(text,cls)=>{const td=document.createElement("td");td.textContent=text;if(cls)td.className=cls;return td};
  const compact=j=>j===undefined||j===null?"":JSON.stringify(j);
  function change(e){
    if(e.before===undefined&&e.after===undefined)return "";
    if(e.before===undefined)return compact(e.after);
    if(e.after===undefined)return compact(e.before)+" → (removed)";
    return compact(e.before)+" → "+compact(e.after);
  }
  async function refresh(){
    const app=appSel&&appSel.value?"&app="+encodeURIComponent(appSel.value):"";
    const r=await fetch("/dashboard/api/activity?limit=20"+app,{credentials:"same-origin"});
    if(!r.ok)return;
    const entries=await r.json();
    let tb=box.querySelector("tbody");
    if(!tb){
      const t=document.createElement("table"),head=document.createElement("tr");
      for(const h of ["When","Who","Action","Subject","Change","Reason"]){const th=document.createElement("th");th.textContent=h;head.append(th)}
      const th=document.createElement("thead");th.append(head);tb=document.createElement("tbody");t.append(th,tb);box.append(t);
    }
    tb.replaceChildren();
    if(!entries.length){const tr=document.createElement("tr");const td=cell("Nothing recorded yet.","muted");td.colSpan=6;tr.append(td);tb.append(tr)}
    for(const e of entries){
      const tr=document.createElement("tr");tr.className="activity-entry";
      if(e.action==="group.halt")tr.classList.add("halt");
      tr.append(cell(new Date(e.at).toLocaleString()),cell(e.actor),cell(e.action),cell(e.subject),cell(change(e),"muted"),cell(e.reason||""));
      tb.append(tr);
    }
  }
  if(appSel)appSel.addEventListener("change",()=>refresh().catch(()=>{}));
  // The page's own script fills #app once its summary has loaded: refresh then for the
  // application it picked (until then the panel shows every application's entries).
  if(appSel)new MutationObserver(()=>refresh().catch(()=>{})).observe(appSel,{childList:true});
  refresh().catch(()=>{});
  setInterval(()=>refresh().catch(()=>{}),30000);
})();
