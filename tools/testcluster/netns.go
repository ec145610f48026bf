package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The managers run in a network namespace of their own: BYOH's manager binds port 9443 on every
// address (hard-coded upstream), so two stacks cannot share one, and simulated workload clusters
// added later listen on arbitrary VIPs that only this namespace treats as local.
const (
	// linkNetwork is where each namespace's /30 link network is taken from.
	linkNetwork = "10.223.0.0/16"
	// namespaceLinkName is the namespace's end of the veth pair; its own namespace, so no clash.
	namespaceLinkName = "eth0"
)

// localRoutes are made local inside the namespace (AnyIP): a process there can listen on, and
// connect to, any address in them, e.g. a workload cluster's control-plane VIP.
var localRoutes = []string{"172.16.0.0/12", "192.168.0.0/16"}

// netns is a network namespace held open by a child process, linked to ours by a veth pair.
type netns struct {
	holder      *child
	hostLink    string // our end of the veth pair
	hostIP      net.IP // our end's address: where the namespace reaches the API server
	namespaceIP net.IP // the namespace's end: where the API server reaches the webhooks
}

// newNetns starts the holder in a new network namespace, links it to ours with a veth pair on a
// /30 that no other stack uses, and brings the namespace's loopback, link and local routes up.
func newNetns(dir string) (*netns, error) {
	for _, tool := range []string{"ip", "nsenter", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("--managers needs %s (iproute2, util-linux, coreutils) on the PATH: %w", tool, err)
		}
	}
	// The holder only has to exist: the namespace it is cloned into lives exactly as long as
	// it does. sleep is 1 MB where this binary is 90 MB once its packages are initialized.
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	holder, err := startProcess(dir, "netns-holder", cmd)
	if err != nil {
		return nil, fmt.Errorf("--managers needs root (CAP_SYS_ADMIN) for a network namespace: %w", err)
	}
	ns := &netns{holder: holder}
	if err := ns.link(); err != nil {
		ns.stop()
		return nil, err
	}
	if err := ns.configureInside(); err != nil {
		ns.stop()
		return nil, err
	}
	return ns, nil
}

func (ns *netns) pid() int { return ns.holder.cmd.Process.Pid }

// path is the namespace's handle: `nsenter --net=<path>` or setns(2) on it joins it.
func (ns *netns) path() string { return "/proc/" + strconv.Itoa(ns.pid()) + "/ns/net" }

// link creates the veth pair on the first free /30, starting from one derived from the holder's
// pid so that concurrent stacks rarely even try the same one. A host-wide lock makes "is it free"
// and "take it" one step for every testcluster on this machine.
func (ns *netns) link() error {
	unlock, err := lockLinkNetworks()
	if err != nil {
		return err
	}
	defer unlock()
	_, network, _ := net.ParseCIDR(linkNetwork)
	base := binary.BigEndian.Uint32(network.IP.To4())
	ones, bits := network.Mask.Size()
	subnets := uint32(1) << (bits - ones - 2) // /30s in the network
	start := uint32(ns.pid()) % subnets
	for i := uint32(0); i < subnets; i++ {
		index := (start + i) % subnets
		hostIP := uint32ToIP(base + index*4 + 1)
		if inUse, err := addressInUse(hostIP); err != nil {
			return err
		} else if inUse {
			continue
		}
		name := "tcm" + strconv.Itoa(int(index))
		// Created with its peer already inside the namespace, so no half-made pair is left in
		// ours if we die right after.
		out, err := runIP("link", "add", name, "type", "veth", "peer", "name", namespaceLinkName,
			"netns", strconv.Itoa(ns.pid()))
		if err != nil {
			if strings.Contains(out, "File exists") {
				continue // a link of that name exists without an address yet: taken
			}
			return fmt.Errorf("ip link add: %w: %s", err, out)
		}
		ns.hostLink, ns.hostIP, ns.namespaceIP = name, hostIP, uint32ToIP(base+index*4+2)
		if out, err := runIP("addr", "add", hostIP.String()+"/30", "dev", name); err != nil {
			return fmt.Errorf("ip addr add: %w: %s", err, out)
		}
		if out, err := runIP("link", "set", name, "up"); err != nil {
			return fmt.Errorf("ip link set up: %w: %s", err, out)
		}
		return nil
	}
	return fmt.Errorf("no free /30 left in %s", linkNetwork)
}

func (ns *netns) configureInside() error {
	var batch bytes.Buffer
	fmt.Fprintln(&batch, "link set lo up")
	fmt.Fprintf(&batch, "addr add %s/30 dev %s\n", ns.namespaceIP, namespaceLinkName)
	fmt.Fprintf(&batch, "link set %s up\n", namespaceLinkName)
	for _, route := range localRoutes {
		fmt.Fprintf(&batch, "route add local %s dev lo\n", route)
	}
	cmd := exec.Command("nsenter", "--net="+ns.path(), "ip", "-batch", "-")
	cmd.Stdin = &batch
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("configure the managers' network namespace: %w: %s", err, out)
	}
	return nil
}

// command returns cmd run inside the namespace. nsenter joins only the network namespace and
// then execs the program, so the process (its pid, Pdeathsig, signals) is the program itself.
func (ns *netns) command(program string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + ns.path(), "--", program}, args...)...)
}

// stop removes the veth pair and ends the holder; the namespace goes with its last process.
// If we are SIGKILLed instead, the holder and the managers die through Pdeathsig and the kernel
// removes the namespace and both ends of the pair with it.
func (ns *netns) stop() {
	if ns.hostLink != "" {
		_, _ = runIP("link", "del", ns.hostLink)
	}
	ns.holder.stop(5 * time.Second)
	if ns.hostLink == "" {
		return
	}
	// The kernel dismantles a namespace asynchronously: wait, so that a caller that checks for
	// leftovers right after we exit finds none.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := net.InterfaceByName(ns.hostLink); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "testcluster up: link %s still exists after the namespace ended\n", ns.hostLink)
}

// lockLinkNetworks takes the host-wide lock under which link networks are chosen and assigned.
func lockLinkNetworks() (func(), error) {
	dir := "/run/lock"
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, "testcluster-netns.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// addressInUse reports whether an address of ip's /30 is already on an interface here: another
// stack's link, or anything else on the machine.
func addressInUse(ip net.IP) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	subnet := &net.IPNet{IP: ip.Mask(net.CIDRMask(30, 32)), Mask: net.CIDRMask(30, 32)}
	for _, addr := range addrs {
		if ipNet, ok := addr.(*net.IPNet); ok && subnet.Contains(ipNet.IP) {
			return true, nil
		}
	}
	return false, nil
}

func runIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func uint32ToIP(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}
