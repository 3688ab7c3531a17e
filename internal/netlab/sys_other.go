//go:build !linux

package netlab

import (
	"errors"
	"os"
	"syscall"
)

// Labs need Linux (see Available); these stubs only let the package build.

func procAttr() *syscall.SysProcAttr { return nil }

func tryLock(*os.File) error { return errors.ErrUnsupported }

type fileID struct{}

func idOf(string) (fileID, bool) { return fileID{}, false }

func killPID(int) {}
