// The calls of runtime.c, through Go's syscall package (no libc: built
// with CGO_ENABLED=0, a static binary whose runtime runs several threads),
// printing the same lines. Usage: runtime DIR (DIR must not exist).
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const atEmptyPath = 0x1000
const atSymlinkNofollow = 0x100

func result(what string, err error) {
	if err != nil {
		fmt.Printf("%s = -1 errno %d\n", what, int(err.(syscall.Errno)))
	} else {
		fmt.Printf("%s = 0\n", what)
	}
}

// major and minor as glibc's and musl's sys/sysmacros.h decode them.
func major(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff) }
func minor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^uint64(0xff) }
func makedev(major, minor uint64) int {
	return int(minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32)
}

func show(what string, err error, st *syscall.Stat_t) {
	if err != nil {
		fmt.Printf("%s = -1 errno %d\n", what, int(err.(syscall.Errno)))
		return
	}
	fmt.Printf("%s %d:%d %o nlink %d rdev %d:%d\n", what, st.Uid, st.Gid, st.Mode, st.Nlink,
		major(st.Rdev), minor(st.Rdev))
}

func statPath(name string) {
	var st syscall.Stat_t
	show("stat "+name, syscall.Stat(name, &st), &st)
}

func lstatPath(name string) {
	var st syscall.Stat_t
	show("lstat "+name, syscall.Lstat(name, &st), &st)
}

// Raw statx(2), read from struct statx's layout as runtime.c reads it.
func statxPath(name string) {
	var buf [256]byte
	p, _ := syscall.BytePtrFromString(name)
	dirfd := int(-100) // AT_FDCWD
	_, _, e := syscall.Syscall6(332 /* SYS_statx, x86_64 */, uintptr(dirfd),
		uintptr(unsafe.Pointer(p)), atSymlinkNofollow, 0x7ff, uintptr(unsafe.Pointer(&buf[0])), 0)
	if e != 0 {
		fmt.Printf("statx %s = -1 errno %d\n", name, int(e))
		return
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(buf[off:]) }
	fmt.Printf("statx %s %d:%d %o rdev %d:%d\n", name, u32(20), u32(24),
		binary.LittleEndian.Uint16(buf[28:]), u32(128), u32(132))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: runtime DIR")
		os.Exit(2)
	}
	syscall.Umask(0o22)
	if err := syscall.Mkdir(os.Args[1], 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := syscall.Chdir(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ids %d %d %d %d\n", syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(),
		syscall.Getegid())
	fd, err := syscall.Open("f", syscall.O_CREAT|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o644)
	result("open f", err)
	result("chown f 123 456", syscall.Chown("f", 123, 456))
	statPath("f")
	result("symlink f l", syscall.Symlink("f", "l"))
	result("lchown l 7 8", syscall.Lchown("l", 7, 8))
	lstatPath("l")
	statPath("l")
	result("fchown f 9 -1", syscall.Fchown(fd, 9, -1))
	var st syscall.Stat_t
	show("fstat f", syscall.Fstat(fd, &st), &st)
	result("chmod f 4755", syscall.Chmod("f", 0o4755))
	result("chown f 10 -1", syscall.Chown("f", 10, -1))
	statPath("f")
	result("chown f 70000 70000", syscall.Chown("f", 70000, 70000))
	statPath("f")
	empty, _ := syscall.BytePtrFromString("")
	_, _, e := syscall.Syscall6(syscall.SYS_FCHOWNAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		11, 12, atEmptyPath, 0)
	if e != 0 {
		result("fchownat f \"\" 11 12 AT_EMPTY_PATH", e)
	} else {
		result("fchownat f \"\" 11 12 AT_EMPTY_PATH", nil)
	}
	show("fstat f", syscall.Fstat(fd, &st), &st)
	result("link f h", syscall.Link("f", "h"))
	statPath("h")
	result("mknod c char 1:3", syscall.Mknod("c", syscall.S_IFCHR|0o640, makedev(1, 3)))
	statPath("c")
	result("chown c 5 6", syscall.Chown("c", 5, 6))
	statxPath("c")
	result("mknod b block 8:1", syscall.Mknod("b", syscall.S_IFBLK|0o600, makedev(8, 1)))
	statPath("b")
	result("mknod p fifo", syscall.Mknod("p", syscall.S_IFIFO|0o644, 0))
	statPath("p")
	result("mknod s socket", syscall.Mknod("s", syscall.S_IFSOCK|0o644, 0))
	statPath("s")
	result("mknod c again", syscall.Mknod("c", syscall.S_IFCHR|0o640, makedev(1, 3)))
	result("chown missing 1 1", syscall.Chown("missing", 1, 1))
	result("mkdir d 0700", syscall.Mkdir("d", 0o700))
	result("chown d 1000 1000", syscall.Chown("d", 1000, 1000))
	statPath("d")
	statxPath("d")
	fmt.Println("== end")
}
