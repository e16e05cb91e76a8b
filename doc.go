// Package switchyard is the root of the Switchyard module: atomic A/B operating-system updates
// (omaha-server, syctl, update-engine, updatectl). It holds no code of its own, only the tests
// that keep the module's shape: the dependency direction between its areas (internal, omaha,
// partitions, signing, rebootlock, update-engine, omaha-server, cmd, testimages) and a doc
// comment on every package.
package switchyard
