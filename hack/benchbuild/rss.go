package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// reportRSS runs a command and writes its peak RSS (KiB) to file; it
// returns the command's exit code. The harness runs the plugin through it
// (this binary again, small) because a child of the harness itself would
// report the harness's peak: Go starts a command with vfork, sharing the
// parent's memory until exec, and the kernel keeps that high-water mark
// in the child's ru_maxrss.
func reportRSS(file string, command []string) int {
	c := exec.Command(command[0], command[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	if c.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "report-rss:", err)
		return 127
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if werr := os.WriteFile(file, []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "report-rss:", werr)
			return 127
		}
	}
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return exit.ExitCode()
	}
	return 0
}

// peakRSS reads what reportRSS wrote.
func peakRSS(file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// frontendBinary is the frontend image's process: the gateway frontend
// (no arguments) and its in-builder commands (a command as argument).
const frontendBinary = "storepack-frontend"

// rssSampler watches the frontend processes that the test bed's builders
// start (descendants of its dockerd or buildkitd, so that another test
// bed's builds on this machine do not count) and keeps their peak RSS
// (VmHWM, which the kernel keeps, so a sample late in a process's life
// sees its peak).
type rssSampler struct {
	daemons map[int]bool
	stop    chan struct{}
	done    sync.WaitGroup

	// Whether each pid seen descends from the daemons; its command is read
	// again at each sample, as runc's init process execs the frontend.
	descendant map[int]bool
	gateway    int64 // KiB
	helper     int64 // KiB
	// cpu is each gateway frontend's CPU time at its last sample, in
	// clock ticks: its own work, none of the builder's steps.
	cpu map[int]int64
}

const (
	notFrontend = iota
	gatewayProcess
	helperProcess
)

// sampleInterval is short enough to see a helper that runs a fraction of
// a second, and long beside what a /proc walk costs.
const sampleInterval = 20 * time.Millisecond

func startRSSSampler(daemons []int) *rssSampler {
	s := &rssSampler{daemons: map[int]bool{}, stop: make(chan struct{}), descendant: map[int]bool{}, cpu: map[int]int64{}}
	for _, pid := range daemons {
		s.daemons[pid] = true
	}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peak RSS of the gateway frontend
// and of the in-builder helpers, in KiB (0: none ran).
func (s *rssSampler) finish() (gateway, helper int64) {
	close(s.stop)
	s.done.Wait()
	return s.gateway, s.helper
}

func (s *rssSampler) sample() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		descendant, known := s.descendant[pid]
		if !known {
			descendant = s.descends(pid)
			s.descendant[pid] = descendant
		}
		if !descendant {
			continue
		}
		kind := classify(pid)
		if kind == notFrontend {
			continue
		}
		hwm := vmHWM(pid)
		if kind == gatewayProcess {
			s.gateway = max(s.gateway, hwm)
			if ticks, ok := cpuTicks(pid); ok {
				s.cpu[pid] = ticks
			}
		} else {
			s.helper = max(s.helper, hwm)
		}
	}
}

// classify tells the frontend's processes from the builders' others.
func classify(pid int) int {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return notFrontend
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if filepath.Base(args[0]) != frontendBinary {
		return notFrontend
	}
	if len(args) == 1 {
		return gatewayProcess
	}
	return helperProcess
}

// descends tells whether pid descends from one of the test bed's daemons.
func (s *rssSampler) descends(pid int) bool {
	for range 32 {
		ppid := parentPID(pid)
		if ppid <= 1 {
			return false
		}
		if s.daemons[ppid] {
			return true
		}
		pid = ppid
	}
	return false
}

// gatewayCPU is the CPU seconds (user and system) of the gateway
// frontends seen, up to their last sample; to call after finish.
func (s *rssSampler) gatewayCPU() float64 {
	var ticks int64
	for _, t := range s.cpu {
		ticks += t
	}
	return float64(ticks) / clockTicks
}

// clockTicks are Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

func parentPID(pid int) int {
	fields := statFields(pid)
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// cpuTicks is a process's utime plus stime, in clock ticks.
func cpuTicks(pid int) (int64, bool) {
	fields := statFields(pid)
	if len(fields) < 13 {
		return 0, false
	}
	utime, uerr := strconv.ParseInt(fields[11], 10, 64)
	stime, serr := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime, uerr == nil && serr == nil
}

// statFields are the fields of /proc/PID/stat after the command's name
// (the state first): the name, in parentheses, may hold spaces.
func statFields(pid int) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(data[i+1:]))
}

// vmHWM is a process's peak resident set size in KiB.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
