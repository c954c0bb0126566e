package app_test

import "github.com/pleura-dev/pleura/portal/auth"

func adminAccount(email string) auth.NewAccount {
	return auth.NewAccount{Kind: auth.KindStaff, Roles: []string{"admin"},
		DisplayName: "Admin", Email: email}
}
