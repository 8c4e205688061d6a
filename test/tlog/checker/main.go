// Command checker verifies a neko-rebuilder transparency log with Go's own
// golang.org/x/mod/sumdb/note and sumdb/tlog, an implementation written apart from the
// node: the checkpoint signature, the tiles against the checkpoint, an inclusion proof for
// one entry and a consistency proof from an older checkpoint. It prints one JSON object.
//
// Usage: checker <base URL of /tlog/> <vkey> <old checkpoint file> <index> <inclusion proof, comma-separated base64> <consistency proof, comma-separated base64>
package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type tiles struct{ base string }

func (t tiles) Height() int { return height }

func (t tiles) ReadTiles(list []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, tile := range list {
		b, err := get(t.base + c2spPath(tile))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// c2spPath is Go's tile path without the height element, as C2SP tlog-tiles spells it.
func c2spPath(t tlog.Tile) string {
	p := t.Path() // tile/8/L/NNN[.p/W]
	return "tile/" + strings.SplitN(p, "/", 3)[2]
}

// bundleGzip records whether the entry bundle came gzip-encoded (Go asks for gzip and undoes it).
var bundleGzip bool

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if strings.Contains(url, "/tile/entries/") {
		bundleGzip = resp.Uncompressed
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

type checkpoint struct {
	size int64
	hash tlog.Hash
}

func open(msg []byte, v note.Verifier) (checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != v.Name() {
		return checkpoint{}, fmt.Errorf("checkpoint text has the wrong shape or origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("bad root hash")
	}
	var hash tlog.Hash
	copy(hash[:], h)
	return checkpoint{size, hash}, nil
}

func hashes(list string) ([]tlog.Hash, error) {
	var out []tlog.Hash
	if list == "" {
		return out, nil
	}
	for _, s := range strings.Split(list, ",") {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("bad proof hash %q", s)
		}
		var h tlog.Hash
		copy(h[:], b)
		out = append(out, h)
	}
	return out, nil
}

func must(step string, err error) {
	if err != nil {
		json.NewEncoder(os.Stdout).Encode(map[string]string{"failed": step, "error": err.Error()})
		os.Exit(1)
	}
}

func main() {
	base, vkey, oldFile := os.Args[1], os.Args[2], os.Args[3]
	index, err := strconv.ParseInt(os.Args[4], 10, 64)
	must("index", err)
	verifier, err := note.NewVerifier(vkey)
	must("vkey", err)

	msg, err := get(base + "checkpoint")
	must("fetch checkpoint", err)
	cur, err := open(msg, verifier)
	must("checkpoint signature", err)
	tree := tlog.Tree{N: cur.size, Hash: cur.hash}

	// Every hash read through this reader comes from tiles checked against the checkpoint.
	reader := tlog.TileHashReader(tree, tiles{base})
	root, err := tlog.TreeHash(cur.size, reader)
	must("tiles", err)
	if root != cur.hash {
		must("tiles", fmt.Errorf("tree hash from tiles %v differs from checkpoint %v", root, cur.hash))
	}

	// The entry, from its bundle, hashed by Go, proven by Go and by the node's own proof.
	entryPath := strings.Replace(c2spPath(tlog.Tile{H: height, L: 0, N: index / 256, W: widthAt(index/256, cur.size)}), "tile/0/", "tile/entries/", 1)
	bundle, err := get(base + entryPath)
	must("entry bundle", err)
	entry, err := nth(bundle, int(index%256))
	must("entry bundle", err)
	leaf := tlog.RecordHash(entry)
	proof, err := tlog.ProveRecord(cur.size, index, reader)
	must("prove record", err)
	must("check record (Go proof)", tlog.CheckRecord(proof, cur.size, cur.hash, index, leaf))
	nodeProof, err := hashes(os.Args[5])
	must("node inclusion proof", err)
	must("check record (node proof)", tlog.CheckRecord(nodeProof, cur.size, cur.hash, index, leaf))

	oldMsg, err := os.ReadFile(oldFile)
	must("read old checkpoint", err)
	old, err := open(oldMsg, verifier)
	must("old checkpoint signature", err)
	tp, err := tlog.ProveTree(cur.size, old.size, reader)
	must("prove tree", err)
	must("check tree (Go proof)", tlog.CheckTree(tp, cur.size, cur.hash, old.size, old.hash))
	nodeTree, err := hashes(os.Args[6])
	must("node consistency proof", err)
	must("check tree (node proof)", tlog.CheckTree(nodeTree, cur.size, cur.hash, old.size, old.hash))

	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"ok": true, "size": cur.size, "oldSize": old.size, "entry": string(entry),
		"origin": verifier.Name(), "inclusionProof": len(proof), "consistencyProof": len(tp),
		"entryBundleGzip": bundleGzip,
	})
}

// widthAt is the width of level-0 tile n in a tree of size entries.
func widthAt(n int64, size int64) int {
	w := size - n*256
	if w > 256 {
		w = 256
	}
	return int(w)
}

func nth(bundle []byte, i int) ([]byte, error) {
	for k := 0; ; k++ {
		if len(bundle) < 2 {
			return nil, fmt.Errorf("bundle ends before entry %d", i)
		}
		n := int(binary.BigEndian.Uint16(bundle))
		if len(bundle) < 2+n {
			return nil, fmt.Errorf("entry %d cut short", k)
		}
		if k == i {
			return bundle[2 : 2+n], nil
		}
		bundle = bundle[2+n:]
	}
}
