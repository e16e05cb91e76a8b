// The operator page's script (package dashboard serves it at /dashboard/dashboard.js).
// Reads go to /dashboard/api/; the admin API is reached through /dashboard/api/admin/,
// every request carrying the session's CSRF token. Controls exist only for a session that
// may act (meta switchyard-act); every write asks for confirmation first.
"use strict";
const meta=n=>{const m=document.querySelector('meta[name="switchyard-'+n+'"]');return m?m.content:""};
const CAN_ACT=meta("act")==="yes",BRIDGE=meta("bridge")==="yes",CSRF=meta("csrf"),REFRESH=Math.max(500,Number(meta("refresh"))||15000);
const $=id=>document.getElementById(id);
const colors=["#2456c9","#e07b00","#1e9e5a","#b3261e","#7b3fc4","#00838f","#8d6e00","#c2185b"];
const statuses=["undefined","update-granted","downloading","downloaded","installed","complete","error","rolled-back","on-hold"];
const statusColor={complete:"#1e9e5a","update-granted":"#7b3fc4",downloading:"#2456c9",downloaded:"#00838f",installed:"#8d6e00",error:"#b3261e","rolled-back":"#c2185b","on-hold":"#999",undefined:"#ccc"};
const el=(tag,attrs={},...kids)=>{const e=document.createElement(tag);for(const[k,v]of Object.entries(attrs))e.setAttribute(k,v);for(const k of kids)e.append(k);return e};
const enc=encodeURIComponent;
const when=t=>t?new Date(t).toLocaleString():"";

async function get(path){
  const r=await fetch(path,{credentials:"same-origin"});
  if(r.status===401){location.href="/";throw new Error("signed out")}
  const b=await r.json();if(!r.ok)throw new Error(b.error||r.statusText);return b}
// admin sends one request to the admin API through the dashboard's bridge.
async function admin(method,path,body){
  const opt={method,credentials:"same-origin",headers:{"X-CSRF-Token":CSRF}};
  if(body!==undefined){opt.headers["Content-Type"]="application/json";opt.body=JSON.stringify(body)}
  const r=await fetch("/dashboard/api/admin"+path,opt);
  if(r.status===401){location.href="/";throw new Error("signed out")}
  const b=await r.json().catch(()=>({}));
  if(!r.ok)throw new Error(b.error||r.status+" "+r.statusText);
  return{body:b,link:r.headers.get("Link")||""}}
function notice(msg,kind){const n=$("notice");n.textContent=msg;n.className=kind?"tag "+kind:""}

// ask shows the confirmation dialog; warn, when set, says the action reaches a whole fleet.
// The close event is dispatched later than the dialog closes: the close of an earlier
// question can arrive after this one opened, so a close while the dialog is open is not
// this question's answer.
function ask(title,text,warn){
  return new Promise(resolve=>{const d=$("confirm");$("confirm-title").textContent=title;$("confirm-text").textContent=text;
    const w=$("confirm-warn");w.hidden=!warn;w.textContent=warn||"";d.returnValue="";
    const closed=()=>{if(d.open)return;d.removeEventListener("close",closed);resolve(d.returnValue==="ok")};
    d.addEventListener("close",closed);d.showModal()})}
async function act(title,text,warn,fn){
  if(!await ask(title,text,warn))return false;
  try{await fn();notice(title+": done.","ok");await refresh();return true}
  catch(e){notice(title+" failed: "+e.message,"halt");return false}}

const appSel=$("app");let summary=null;
const appPath=()=>"/apps/"+enc(summary.app);
function groupOf(name){return(summary.groups||[]).find(g=>g.name===name)}
function hostsOnChannel(c){return(summary.groups||[]).filter(g=>g.channel===c).reduce((a,g)=>a+g.total,0)}
function fillSelect(sel,values,first){const keep=sel.value;sel.replaceChildren(...first.map(([v,t])=>el("option",{value:v},t)),...values.map(v=>el("option",{value:v},v)));if([...sel.options].some(o=>o.value===keep))sel.value=keep}

async function load(){
  const q=new URLSearchParams();if(appSel.value)q.set("app",appSel.value);if($("chart-group").value)q.set("group",$("chart-group").value);
  const s=await get("/dashboard/api/summary?"+q);summary=s;
  if(!appSel.options.length){for(const a of s.apps)appSel.append(el("option",{value:a.id},a.name+" ("+a.id+")"));appSel.value=s.app}
  renderChannels(s);renderGroups(s);
  const names=(s.groups||[]).map(g=>g.name);
  fillSelect($("chart-group"),names,[["","all groups"]]);fillSelect($("f-group"),names,[["","any"]]);
  chart(s.timeline||[],s);
  $("updated").textContent="updated "+new Date().toLocaleTimeString();
}
function renderChannels(s){
  const ch=document.querySelector("#channels tbody");ch.replaceChildren();
  for(const c of s.channels||[]){
    const ctl=el("td",{class:"controls"});
    if(CAN_ACT){
      const set=el("button",{type:"button","data-action":"set-release","data-channel":c.name},"Set release…");set.onclick=()=>channelDialog(c,"set");
      const pro=el("button",{type:"button","data-action":"promote","data-channel":c.name},"Promote…");pro.onclick=()=>channelDialog(c,"promote");
      ctl.append(set,pro)}
    const boards=Object.entries(c.releases||{});
    if(!boards.length)ch.append(el("tr",{"data-channel":c.name},el("td",{},c.name),el("td",{class:"muted"},"—"),el("td",{class:"muted"},"no release"),ctl));
    boards.forEach(([b,r],i)=>ch.append(el("tr",{"data-channel":c.name},el("td",{},c.name),el("td",{},b),el("td",{},r.version),i?el("td"):ctl)))}
}
function renderGroups(s){
  $("fleet").textContent="("+s.fleet+" instances)";
  const gt=document.querySelector("#groups tbody");gt.replaceChildren();
  for(const g of s.groups||[]){
    const bar=el("div",{class:"bar",title:"on target "+g.on_target+" of "+g.total});
    for(const[st,n]of Object.entries(g.counts)){if(!n)continue;const sp=el("span",{title:st+": "+n});sp.style.width=(100*n/Math.max(g.total,1)).toFixed(2)+"%";sp.style.background=statusColor[st]||"#888";bar.append(sp)}
    const pct=g.total?Math.round(100*g.on_target/g.total):0;
    const halted=!!(g.rollout&&g.rollout.halt_reason),paused=!!(g.rollout&&g.rollout.paused);
    const state=halted?"halted":paused?"paused":"active";
    const tags=el("div",{});
    if(halted)tags.append(el("span",{class:"tag halt",title:g.rollout.halt_reason},"halted"),el("div",{class:"muted halt-reason"},g.rollout.halt_reason));
    else if(paused)tags.append(el("span",{class:"tag pause"},"paused"));
    if(!g.updates_enabled)tags.append(el("span",{class:"tag pause"},"updates off"));
    const ctl=el("div",{class:"controls"});
    if(CAN_ACT){
      const b=(action,text,fn)=>{const x=el("button",{type:"button","data-action":action,"data-group":g.name},text);x.onclick=fn;ctl.append(x)};
      if(halted||paused)b("resume","Resume",()=>act("Resume "+g.name,"Hosts in group "+g.name+" are offered the update again.",
        halted?"This group was halted automatically ("+g.rollout.halt_reason+"). Resuming offers the update to all "+g.total+" hosts of the group again and starts a new failure window.":"",
        ()=>admin("POST",appPath()+"/groups/"+enc(g.name)+"/rollout/resume")));
      else b("pause","Pause",()=>act("Pause "+g.name,"Hosts in group "+g.name+" get no new update offers until it is resumed; hosts already updating finish.","",
        ()=>admin("POST",appPath()+"/groups/"+enc(g.name)+"/rollout/pause")));
      b("policy","Policy…",()=>policyDialog(g));
      b("block","Block version…",()=>blockDialog(g));
    }
    const counts=Object.entries(g.counts).map(([k,v])=>k+" "+v).join(", ");
    gt.append(el("tr",{"data-group":g.name,"data-state":state},el("td",{},g.name,tags,ctl),el("td",{},g.track+" → "+g.channel),
      el("td",{},pct+"% on "+(g.target||[]).join(", ")+(g.rollout?" · "+g.rollout.percent+"% cohort":"")),
      el("td",{},bar,el("div",{class:"muted"},counts||"no instances"))))}
}

// The policy editor: the same fields as syctl group policy set, saved with the group's
// version so a concurrent change is refused (409) rather than overwritten.
const numFields=["percent","max_per_period","max_in_flight","halt_failures","halt_of"],textFields=["period","timeout","pin"],listFields=["floors","blocked"];
let policyFor=null;
async function policyDialog(g){
  let cur;try{cur=(await admin("GET",appPath()+"/groups/"+enc(g.name)+"/policy")).body}catch(e){notice("Reading the policy failed: "+e.message,"halt");return}
  policyFor={group:g.name,version:cur.version,before:cur.policy||{}};const p=policyFor.before;
  $("policy-group").textContent=g.name;$("policy-error").hidden=true;
  for(const f of numFields)$("p-"+f).value=p[f]??"";
  for(const f of textFields)$("p-"+f).value=p[f]??"";
  for(const f of listFields)$("p-"+f).value=(p[f]||[]).join(" ");
  $("p-windows").value=(p.windows||[]).join("\n");
  $("policy").showModal()}
function readPolicy(){
  const p={};
  for(const f of numFields){const v=$("p-"+f).value.trim();if(v!==""){const n=Number(v);if(!Number.isInteger(n))throw new Error(f.replaceAll("_"," ")+" must be a whole number");if(n||f==="percent")p[f]=n}}
  for(const f of textFields){const v=$("p-"+f).value.trim();if(v)p[f]=v}
  for(const f of listFields){const v=$("p-"+f).value.trim().split(/[\s,]+/).filter(Boolean);if(v.length)p[f]=v}
  const w=$("p-windows").value.split("\n").map(s=>s.trim()).filter(Boolean);if(w.length)p.windows=w;
  return p}
$("policy-form").addEventListener("submit",async e=>{
  if(e.submitter&&e.submitter.value!=="save")return;
  e.preventDefault();
  let p;try{p=readPolicy()}catch(err){$("policy-error").textContent=err.message;$("policy-error").hidden=false;return}
  const g=groupOf(policyFor.group),was=policyFor.before.percent??100,now=p.percent??100;
  const warn=now===100&&was<100?"This rolls the update out to 100% of group "+policyFor.group+" ("+(g?g.total:"all")+" hosts).":"";
  $("policy").close();
  const okd=await act("Save the policy of "+policyFor.group,"The new policy applies from the next check-in.",warn,
    ()=>admin("PUT",appPath()+"/groups/"+enc(policyFor.group)+"/policy",{policy:p,version:policyFor.version}));
  if(!okd){$("policy-error").textContent=$("notice").textContent;$("policy-error").hidden=false;$("policy").showModal()}
});
let blockFor=null;
function blockDialog(g){blockFor=g.name;$("block-group").textContent=g.name;$("block-version").value="";$("block").showModal()}
$("block").addEventListener("close",async()=>{
  if($("block").returnValue!=="block")return;const v=$("block-version").value.trim(),g=blockFor;if(!v)return;
  await act("Block "+v+" in "+g,"Hosts in group "+g+" are never offered "+v+".","",async()=>{
    const cur=(await admin("GET",appPath()+"/groups/"+enc(g)+"/policy")).body,p=cur.policy||{};
    p.blocked=[...new Set([...(p.blocked||[]),v])];
    await admin("PUT",appPath()+"/groups/"+enc(g)+"/policy",{policy:p,version:cur.version})})});

// Channels: point one at a release for a board, or promote it from another channel; both
// reach every host of every group that follows it.
let channelFor=null;
async function channelDialog(c,mode){
  channelFor={channel:c.name,mode};
  $("channel-title").textContent=(mode==="set"?"Set the release of ":"Promote into ")+c.name;
  $("channel-board-l").hidden=$("channel-version-l").hidden=mode!=="set";$("channel-from-l").hidden=mode==="set";
  if(mode==="set"){
    let rels=[];try{rels=(await admin("GET",appPath()+"/releases")).body||[]}catch(e){notice("Reading releases failed: "+e.message,"halt");return}
    const fill=()=>fillSelect($("channel-version"),rels.filter(r=>r.board===$("channel-board").value.trim()).map(r=>r.version),[]);
    $("channel-board").oninput=fill;fill()}
  else fillSelect($("channel-from"),(summary.channels||[]).map(x=>x.name).filter(n=>n!==c.name),[]);
  $("channel").showModal()}
$("channel").addEventListener("close",async()=>{
  if($("channel").returnValue!=="save")return;const c=channelFor.channel,n=hostsOnChannel(c);
  const warn="This reaches every host of every group following channel "+c+" ("+n+" hosts now).";
  if(channelFor.mode==="set"){const b=$("channel-board").value.trim(),v=$("channel-version").value;if(!v){notice("No release of that board to choose.","halt");return}
    await act("Set "+c+" to "+v+" on "+b,"Channel "+c+" offers "+v+" to "+b+" hosts.",warn,()=>admin("PUT",appPath()+"/channels/"+enc(c)+"/releases/"+enc(b),{version:v}))}
  else{const from=$("channel-from").value;if(!from)return;
    await act("Promote "+from+" into "+c,"Channel "+c+" offers, on every board, the release "+from+" offers.",warn,()=>admin("POST",appPath()+"/channels/"+enc(c)+"/promote",{from}))}});

// The chart: stacked areas of hosts per version over time, ending at the live point; a
// single point (nothing sampled yet) is drawn as one stacked column.
function chart(samples,s){
  const box=$("chart"),legend=$("legend");box.replaceChildren();legend.replaceChildren();
  $("chart-note").textContent=s.group&&!s.group_history?"only the current distribution is known per group":"";
  if(!samples.length){box.append(el("p",{class:"muted"},"No instances have checked in yet."));return}
  const times=[...new Set(samples.map(x=>x.at))].sort(),versions=[...new Set(samples.map(x=>x.version))].sort();
  const at=new Map(times.map(t=>[t,new Map()]));for(const x of samples)at.get(x.at).set(x.version,x.count);
  const W=900,H=240,L=56,R=20,T=12,B=40;const total=times.map(t=>[...at.get(t).values()].reduce((a,b)=>a+b,0));const max=Math.max(1,...total);
  const t0=Date.parse(times[0]),t1=Date.parse(times[times.length-1]),span=Math.max(1,t1-t0);
  const single=times.length<2;
  const x=i=>single?L:L+(Date.parse(times[i])-t0)*(W-L-R)/span,y=v=>H-B-v*(H-T-B)/max;
  const NS="http://www.w3.org/2000/svg",svg=document.createElementNS(NS,"svg");
  svg.setAttribute("viewBox","0 0 "+W+" "+H);svg.setAttribute("width","100%");svg.setAttribute("role","img");svg.setAttribute("aria-label","versions over time");
  const line=(x1,y1,x2,y2,c)=>{const l=document.createElementNS(NS,"line");l.setAttribute("x1",x1);l.setAttribute("y1",y1);l.setAttribute("x2",x2);l.setAttribute("y2",y2);l.setAttribute("stroke",c);svg.append(l)};
  const text=(tx,ty,str,anchor,cls)=>{const e=document.createElementNS(NS,"text");e.setAttribute("x",tx);e.setAttribute("y",ty);e.setAttribute("font-size","11");e.setAttribute("text-anchor",anchor||"start");if(cls)e.setAttribute("class",cls);e.textContent=str;svg.append(e)};
  const base=times.map(()=>0);
  versions.forEach((v,vi)=>{const top=times.map((t,i)=>base[i]+(at.get(t).get(v)||0));
    let d;
    if(single)d="M"+L+","+y(top[0])+"L"+(W-R)+","+y(top[0])+"L"+(W-R)+","+y(base[0])+"L"+L+","+y(base[0])+"Z";
    else{d="M"+times.map((t,i)=>x(i)+","+y(top[i])).join("L");for(let i=times.length-1;i>=0;i--)d+="L"+x(i)+","+y(base[i]);d+="Z"}
    const path=document.createElementNS(NS,"path");path.setAttribute("d",d);path.setAttribute("fill",colors[vi%colors.length]);path.setAttribute("opacity","0.85");
    const title=document.createElementNS(NS,"title");title.textContent=v;path.append(title);svg.append(path);
    top.forEach((t,i)=>base[i]=t);legend.append(el("span",{},el("i",{class:"sw",style:"background:"+colors[vi%colors.length]}),v+" ("+(at.get(times[times.length-1]).get(v)||0)+" now)"))});
  // Axes: hosts up the left with three ticks, time along the bottom.
  line(L,T,L,H-B,"#667085");line(L,H-B,W-R,H-B,"#667085");
  for(const v of[0,Math.round(max/2),max]){line(L-4,y(v),L,y(v),"#667085");text(L-6,y(v)+4,String(v),"end","ytick")}
  const yl=document.createElementNS(NS,"text");yl.setAttribute("transform","translate(12,"+((H-B+T)/2)+") rotate(-90)");yl.setAttribute("font-size","11");yl.setAttribute("text-anchor","middle");yl.textContent="hosts";svg.append(yl);
  const fmt=ms=>new Date(ms).toLocaleString([], {month:"short",day:"numeric",hour:"2-digit",minute:"2-digit"});
  if(single)text((L+W-R)/2,H-B+16,"now ("+fmt(t1)+")","middle","xtick");
  else{text(L,H-B+16,fmt(t0),"start","xtick");text((L+W-R)/2,H-B+16,fmt(t0+span/2),"middle","xtick");text(W-R,H-B+16,"now ("+fmt(t1)+")","end","xtick")}
  text((L+W-R)/2,H-6,"time"+(s.group?" · group "+s.group:" · all groups")+" · peak "+max+" hosts","middle");
  box.append(svg)}

// Instances: a text search (up to 200 matches), or the admin API's filtered list walked a
// page at a time with its keyset cursors.
for(const st of statuses)$("f-status").append(el("option",{value:st},st));
const pageSize=50;let cursors=[""],pageIndex=0,nextCursor="",openMachine="";
async function listInstances(){
  const tb=document.querySelector("#instances tbody"),q=$("q").value.trim();
  const f={group:$("f-group").value,status:$("f-status").value,version:$("f-version").value.trim()};
  let rows;
  if(q||!BRIDGE){rows=(await get("/dashboard/api/instances?app="+enc(appSel.value)+"&q="+enc(q)+"&limit=200")).filter(i=>(!f.group||i.group===f.group)&&(!f.status||i.status===f.status)&&(!f.version||i.version===f.version));
    if($("f-sort").value)rows.sort((a,b)=>Date.parse(b.last_check)-Date.parse(a.last_check));
    nextCursor="";$("page").textContent=rows.length+" matches"}
  else{const p=new URLSearchParams({app:appSel.value,limit:String(pageSize)});for(const[k,v]of Object.entries(f))if(v)p.set(k,v);
    if($("f-sort").value)p.set("sort",$("f-sort").value);if(cursors[pageIndex])p.set("after",cursors[pageIndex]);
    const r=await admin("GET","/instances?"+p);rows=r.body||[];
    const m=/<([^>]*)>;\s*rel="next"/.exec(r.link);nextCursor=m?new URL(m[1],location.href).searchParams.get("after")||"":"";
    $("page").textContent="page "+(pageIndex+1)+" · "+rows.length+" instances"+(nextCursor?" · more follow":"")}
  $("prev").disabled=pageIndex===0||!!q||!BRIDGE;$("next").disabled=!nextCursor;
  const codes=[...new Set(rows.filter(i=>i.last_error_code).map(i=>i.last_error_code))];
  const names=codes.length?await get("/dashboard/api/error-names?"+codes.map(c=>"code="+c).join("&")):{};
  for(const i of rows)if(i.last_error_code&&!i.last_error_name)i.last_error_name=names[String(i.last_error_code)]||"";
  tb.replaceChildren();
  for(const i of rows){const tr=el("tr",{class:"pick","data-machine":i.machine_id},el("td",{},i.machine_id+(i.alias?" ("+i.alias+")":"")),el("td",{},i.group),el("td",{},i.version),el("td",{},i.status),
    el("td",{},codeCell(i.last_error_code,i.last_error_name)),el("td",{},when(i.last_check)));tr.onclick=()=>showInstance(i.machine_id);tb.append(tr)}}
function resetPages(){cursors=[""];pageIndex=0;listInstances().catch(e=>notice(String(e),"halt"))}
let timer;$("q").addEventListener("input",()=>{clearTimeout(timer);timer=setTimeout(resetPages,200)});
for(const id of["f-group","f-status","f-sort"])$(id).addEventListener("change",resetPages);
$("f-version").addEventListener("change",resetPages);
$("next").onclick=()=>{if(!nextCursor)return;cursors[pageIndex+1]=nextCursor;pageIndex++;listInstances().catch(e=>notice(String(e),"halt"))};
$("prev").onclick=()=>{if(pageIndex>0){pageIndex--;listInstances().catch(e=>notice(String(e),"halt"))}};
const codeCell=(code,name)=>code?code+(name?" — "+name:""):"";
async function showInstance(id){
  openMachine=id;const box=$("history"),views=await get("/dashboard/api/instances/"+enc(id));
  const kids=[el("h2",{},"Instance "+id+" ",el("button",{type:"button",id:"close-instance"},"Close"))];
  for(const d of views){
    kids.push(el("p",{class:"muted"},d.app_id+" · "+d.board+" · "+d.ip+" · "+d.group+" · "+d.version+" · "+d.status+(d.last_error_code?" · last error "+codeCell(d.last_error_code,d.last_error_name):"")));
    const h=el("table",{class:"history"},el("thead",{},el("tr",{},el("th",{},"When"),el("th",{},"Status"),el("th",{},"Version"),el("th",{},"Error"))));const hb=el("tbody");
    for(const x of d.history||[])hb.append(el("tr",{},el("td",{},when(x.at)),el("td",{},x.status),el("td",{},x.version),el("td",{},codeCell(x.error_code,x.error_name))));h.append(hb);
    const ev=el("table",{class:"events"},el("thead",{},el("tr",{},el("th",{},"When"),el("th",{},"Event"),el("th",{},"Result"),el("th",{},"Version"),el("th",{},"Error"))));const eb=el("tbody");
    for(const x of d.events||[])eb.append(el("tr",{},el("td",{},when(x.at)),el("td",{},x.type+" "+x.type_name),el("td",{},x.result+" "+x.result_name),el("td",{},(x.previous_version?x.previous_version+" → ":"")+x.version),el("td",{},codeCell(x.error_code,x.error_name))));ev.append(eb);
    kids.push(el("h3",{},"Status history"),h,el("h3",{},"Events"),ev)}
  box.replaceChildren(...kids);$("close-instance").onclick=()=>{openMachine="";box.replaceChildren()}}

// refresh reloads everything shown; the dialogs and the filters are not touched, so an
// open form and the instance view survive it.
// A refresh asked for while one runs (an action's, during the poll) runs once more after it.
let busy=null,again=false;
function refresh(){
  if(busy){again=true;return busy}
  busy=(async()=>{try{do{again=false;await load();await listInstances();if(openMachine)await showInstance(openMachine)}while(again)}finally{busy=null}})();
  return busy}
appSel.addEventListener("change",()=>{$("chart-group").value="";resetPages();load().catch(e=>notice(String(e),"halt"))});
$("chart-group").addEventListener("change",()=>load().catch(e=>notice(String(e),"halt")));
refresh().catch(e=>notice(String(e),"halt"));
setInterval(()=>refresh().catch(e=>notice("Refresh failed: "+e.message,"halt")),REFRESH);
