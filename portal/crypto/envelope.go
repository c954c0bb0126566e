package crypto

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Key purposes in the data_keys table.
const (
	purposeField = "field"
	purposeIndex = "index"
)

// formatV1 is the first byte of every ciphertext this package writes.
const formatV1 = 0x01

// headerLen is format byte + 8-byte key id + 12-byte nonce.
const headerLen = 1 + 8 + 12

// ErrDecrypt is returned for any ciphertext that fails to open: tampered,
// truncated, or moved to another tenant, table, row or column. The cause is
// deliberately not distinguished.
var ErrDecrypt = errors.New("ciphertext does not open in this place")

// Location binds a value to where it is stored. Every field goes into the
// AEAD's associated data.
type Location struct {
	// Table and Column name where the value lives.
	Table, Column string
	// Row is the row's primary key.
	Row string
}

// Keyring encrypts and decrypts field values for one tenant. Data keys are
// stored wrapped in data_keys and cached unwrapped in memory.
type Keyring struct {
	tenant  string
	db      *pgxpool.Pool
	transit Transit

	mu      sync.RWMutex
	keys    map[int64]cipher.AEAD
	active  int64
	indexID int64
	index   []byte
}

// NewKeyring loads (or creates, on first start) the tenant's active field
// and blind-index data keys.
func NewKeyring(ctx context.Context, tenant string, db *pgxpool.Pool,
	t Transit) (*Keyring, error) {
	k := &Keyring{tenant: tenant, db: db, transit: t, keys: map[int64]cipher.AEAD{}}
	id, key, err := k.activeKey(ctx, purposeField)
	if err != nil {
		return nil, err
	}
	if k.keys[id], err = newGCM(key); err != nil {
		return nil, err
	}
	k.active = id
	if k.indexID, k.index, err = k.activeKey(ctx, purposeIndex); err != nil {
		return nil, err
	}
	return k, nil
}

// activeKey returns the purpose's active data key, creating one if none
// exists. Replicas starting together agree through the unique index on
// active keys: the loser of the race reads the winner's key.
func (k *Keyring) activeKey(ctx context.Context, purpose string) (int64, []byte, error) {
	for range 2 {
		var id int64
		var wrapped string
		err := k.db.QueryRow(ctx, `SELECT id, wrapped FROM data_keys
			WHERE purpose = $1 AND active`, purpose).Scan(&id, &wrapped)
		if err == nil {
			key, err := k.transit.Unwrap(ctx, wrapped)
			return id, key, err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, nil, fmt.Errorf("reading %s data key: %w", purpose, err)
		}
		key, wrapped, err := k.transit.NewDataKey(ctx)
		if err != nil {
			return 0, nil, err
		}
		version, err := WrappedVersion(wrapped)
		if err != nil {
			return 0, nil, err
		}
		err = k.db.QueryRow(ctx, `INSERT INTO data_keys (purpose, wrapped, key_version, active)
			VALUES ($1, $2, $3, true) ON CONFLICT DO NOTHING RETURNING id`,
			purpose, wrapped, version).Scan(&id)
		if err == nil {
			return id, key, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, nil, fmt.Errorf("storing %s data key: %w", purpose, err)
		}
	}
	return 0, nil, fmt.Errorf("no active %s data key after two attempts", purpose)
}

// Encrypt seals plaintext for loc with the active data key.
func (k *Keyring) Encrypt(loc Location, plaintext []byte) ([]byte, error) {
	k.mu.RLock()
	id, aead := k.active, k.keys[k.active]
	k.mu.RUnlock()
	out := make([]byte, headerLen, headerLen+len(plaintext)+aead.Overhead())
	out[0] = formatV1
	binary.BigEndian.PutUint64(out[1:9], uint64(id))
	if _, err := rand.Read(out[9:headerLen]); err != nil {
		return nil, fmt.Errorf("drawing nonce: %w", err)
	}
	return aead.Seal(out, out[9:headerLen], plaintext, k.aad(out[:9], loc)), nil
}

// Decrypt opens a value sealed by Encrypt for the same loc. Any mismatch,
// including a value copied from another row, yields ErrDecrypt.
func (k *Keyring) Decrypt(ctx context.Context, loc Location, ct []byte) ([]byte, error) {
	if len(ct) < headerLen || ct[0] != formatV1 {
		return nil, ErrDecrypt
	}
	aead, err := k.aeadFor(ctx, int64(binary.BigEndian.Uint64(ct[1:9])))
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, ct[9:headerLen], ct[headerLen:], k.aad(ct[:9], loc))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// BlindIndex is a keyed HMAC of a normalized value for exact-match lookups
// on an encrypted column; it reveals equality only, and only to key holders.
func (k *Keyring) BlindIndex(column, normalized string) []byte {
	m := hmac.New(sha256.New, k.index)
	writeField(m, k.tenant)
	writeField(m, column)
	writeField(m, normalized)
	return m.Sum(nil)
}

func (k *Keyring) aeadFor(ctx context.Context, id int64) (cipher.AEAD, error) {
	k.mu.RLock()
	aead := k.keys[id]
	k.mu.RUnlock()
	if aead != nil {
		return aead, nil
	}
	var wrapped string
	err := k.db.QueryRow(ctx, `SELECT wrapped FROM data_keys WHERE id = $1 AND purpose = $2`,
		id, purposeField).Scan(&wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrDecrypt
	} else if err != nil {
		return nil, fmt.Errorf("reading data key %d: %w", id, err)
	}
	key, err := k.transit.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, err
	}
	if aead, err = newGCM(key); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys[id] = aead
	k.mu.Unlock()
	return aead, nil
}

// aad is the associated data: header, tenant, table, row and column, each
// length-prefixed so no two locations share an encoding.
func (k *Keyring) aad(header []byte, loc Location) []byte {
	b := append([]byte("pleura/field/v1"), header...)
	for _, f := range []string{k.tenant, loc.Table, loc.Row, loc.Column} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func writeField(w interface{ Write([]byte) (int, error) }, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	_, _ = w.Write(n[:])
	_, _ = w.Write([]byte(s))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("data key is %d bytes, want 32 for AES-256", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
