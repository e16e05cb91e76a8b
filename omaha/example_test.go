package omaha_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-os/switchyard/omaha"
)

// A host builds a Flatcar-shaped update check, marshals it and reads the server's answer.
func Example_client() {
	host := omaha.Host{
		Version:   "4081.2.0",
		Track:     "stable",
		Board:     "amd64-usr",
		Machine:   "x86_64",
		MachineID: "dbff85b41ae14f41bde761eefbdafaac",
		BootID:    "{0c288430-2504-4db4-913a-8c3de52afd07}",
	}
	body, err := omaha.NewUpdateCheckRequest(host, false, omaha.EventRebooted("")).Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println(string(body))

	answer := `<response protocol="3.0" server="example"><daystart elapsed_seconds="0"/>` +
		`<app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok"><ping status="ok"/>` +
		`<updatecheck status="noupdate"/><event status="ok"/></app></response>`
	resp, err := omaha.ParseResponse(strings.NewReader(answer))
	if err != nil {
		panic(err)
	}
	_, err = resp.Offer(omaha.FlatcarAppID)
	fmt.Println(errors.Is(err, omaha.ErrNoUpdate))
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1"><os platform="CoreOS" version="Chateau" sp="4081.2.0_x86_64"></os><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="4081.2.0" track="stable" bootid="{0c288430-2504-4db4-913a-8c3de52afd07}" machineid="dbff85b41ae14f41bde761eefbdafaac" alephversion="4081.2.0" board="amd64-usr" lang="en-US" delta_okay="false"><ping active="1"></ping><updatecheck></updatecheck><event eventtype="3" eventresult="2"></event></app></request>
	// true
}

// A server parses and validates a request, then answers each app.
func Example_server() {
	body := `<request protocol="3.0" installsource="scheduler" ismachine="1">` +
		`<app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="4081.2.0" track="stable" board="amd64-usr" machineid="m1">` +
		`<ping active="1"/><updatecheck/><event eventtype="3" eventresult="0" errorcode="268435490"/></app></request>`
	req, err := omaha.ParseRequest(strings.NewReader(body))
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		fmt.Println("answer HTTP", omaha.HTTPStatus(err), err)
		return
	}
	app := req.Apps[0]
	fmt.Println(app.Events[0].Type, app.Events[0].Result, app.Events[0].Code())

	resp := omaha.NewResponse("switchyard", time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC))
	a := omaha.NewAppResponse(app)
	err = a.SetOffer(&omaha.Offer{
		Version: "4100.0.0",
		URLs:    []string{"https://updates.example.com/amd64-usr/4100.0.0/"},
		Package: omaha.Package{Name: "flatcar_production_update.gz", Size: 465881871},
		SHA256:  make([]byte, 32),
	})
	if err != nil {
		panic(err)
	}
	resp.Apps = append(resp.Apps, a)
	out, _ := resp.Marshal()
	fmt.Println(string(out))
	// Output:
	// UpdateComplete Error OmahaResponseInvalid|TestOmahaUrlFlag
	// <?xml version="1.0" encoding="UTF-8"?>
	// <response protocol="3.0" server="switchyard"><daystart elapsed_seconds="3600"></daystart><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" status="ok"><ping status="ok"></ping><updatecheck status="ok"><urls><url codebase="https://updates.example.com/amd64-usr/4100.0.0/"></url></urls><manifest version="4100.0.0"><packages><package name="flatcar_production_update.gz" size="465881871" required="true"></package></packages><actions><action event="postinstall" sha256="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="></action></actions></manifest></updatecheck><event status="ok"></event></app></response>
}
