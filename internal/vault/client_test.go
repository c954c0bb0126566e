package vault

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		// data is a transit key read as Vault returns it.
		data map[string]any
		// want is the parsed key.
		want KeyInfo
	}{
		{
			name: "symmetric key versions are Unix seconds",
			data: map[string]any{"type": "aes256-gcm96", "exportable": false,
				"deletion_allowed": false, "auto_rotate_period": json.Number("7776000"),
				"latest_version": json.Number("2"), "min_decryption_version": json.Number("1"),
				"keys": map[string]any{"1": json.Number("100"), "2": json.Number("200")}},
			want: KeyInfo{Type: "aes256-gcm96", AutoRotatePeriod: 90 * 24 * time.Hour,
				LatestVersion: 2, MinDecryptionVersion: 1, LatestCreated: time.Unix(200, 0).UTC()},
		},
		{
			name: "asymmetric key versions carry creation_time",
			data: map[string]any{"type": "ed25519", "deletion_allowed": true,
				"latest_version": json.Number("1"), "min_decryption_version": json.Number("1"),
				"keys": map[string]any{"1": map[string]any{
					"creation_time": "2026-12-03T17:00:00.5Z"}}},
			want: KeyInfo{Type: "ed25519", DeletionAllowed: true, LatestVersion: 1,
				MinDecryptionVersion: 1,
				LatestCreated:        time.Date(2026, 12, 3, 17, 0, 0, 5e8, time.UTC)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKey(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("parseKey = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestRoleMatches(t *testing.T) {
	want := KubernetesRole{ServiceAccounts: []string{"portal"}, Namespaces: []string{"ns"},
		Policies: []string{"p"}, Audience: "vault", TokenTTL: time.Hour}
	read := map[string]any{"bound_service_account_names": []any{"portal"},
		"bound_service_account_namespaces": []any{"ns"}, "token_policies": []any{"p"},
		"audience": "vault", "token_ttl": json.Number("3600")}
	if !roleMatches(read, want) {
		t.Error("identical role reported as different")
	}
	read["bound_service_account_namespaces"] = []any{"ns", "other"}
	if roleMatches(read, want) {
		t.Error("a role widened to another namespace reported as matching")
	}
}
