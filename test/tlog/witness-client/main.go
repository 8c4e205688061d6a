// Command witness-client is a C2SP tlog-witness client written apart from the node, on Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog: it grows a log of its own, signs its checkpoints
// and posts add-checkpoint requests with Go's RFC 6962 consistency proofs to a witness. It
// prints one JSON object per request: the step, the status, the content type and the body.
//
// Usage: witness-client <add-checkpoint URL> <log signer key (note.NewSigner form)>
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// hashes is an in-memory tlog.HashReader over the stored hashes of the log.
type hashes []tlog.Hash

func (h *hashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(*h)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = (*h)[x]
	}
	return out, nil
}

type log struct {
	signer note.Signer
	origin string
	stored hashes
	n      int64
}

func (l *log) grow(to int64, salt string) {
	for ; l.n < to; l.n++ {
		hs, err := tlog.StoredHashes(l.n, []byte(fmt.Sprintf("claim %s%d\n", salt, l.n)), &l.stored)
		must(err)
		l.stored = append(l.stored, hs...)
	}
}

func (l *log) checkpoint() []byte {
	root, err := tlog.TreeHash(l.n, &l.stored)
	must(err)
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, l.n, base64.StdEncoding.EncodeToString(root[:]))
	msg, err := note.Sign(&note.Note{Text: text}, l.signer)
	must(err)
	return msg
}

func (l *log) proof(old int64) []tlog.Hash {
	if old == 0 || old == l.n {
		return nil
	}
	p, err := tlog.ProveTree(l.n, old, &l.stored)
	must(err)
	return p
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func post(url, step string, old int64, proof []tlog.Hash, checkpoint []byte) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", base64.StdEncoding.EncodeToString(h[:]))
	}
	body.WriteString("\n")
	body.Write(checkpoint)
	resp, err := http.Post(url, "text/plain", &body)
	must(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(err)
	text := string(checkpoint[:strings.Index(string(checkpoint), "\n\n")+1])
	out, _ := json.Marshal(map[string]any{"step": step, "status": resp.StatusCode, "type": resp.Header.Get("Content-Type"), "body": string(b), "text": text})
	fmt.Println(string(out))
}

func main() {
	url, skey := os.Args[1], os.Args[2]
	signer, err := note.NewSigner(skey)
	must(err)
	l := &log{signer: signer, origin: signer.Name()}
	l.grow(5, "")
	post(url, "first", 0, nil, l.checkpoint())
	post(url, "stale", 0, nil, l.checkpoint())
	l.grow(8, "")
	post(url, "grow 5 to 8", 5, l.proof(5), l.checkpoint())
	l.grow(13, "")
	// From 8, a power of two: RFC 6962 leaves the old root out of the proof.
	post(url, "grow 8 to 13", 8, l.proof(8), l.checkpoint())
	l.grow(30, "")
	bad := l.proof(13)
	bad[0][0] ^= 1
	post(url, "bad proof", 13, bad, l.checkpoint())
	post(url, "grow 13 to 30", 13, l.proof(13), l.checkpoint())
}
