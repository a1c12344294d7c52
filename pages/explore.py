import streamlit as st

st.title("explore")
st.write(st.query_params.to_dict())
